"""Admission webhooks: calling the webhooks that Validating/MutatingWebhookConfigurations
register, over HTTPS, the way kube-apiserver's admission plugins do.

Owns: matching a write against each webhook's rules and selectors, the AdmissionReview
(admission.k8s.io/v1) sent and its answer, failurePolicy and timeoutSeconds, and the errors a
denial or a failed call turns into. Never sends the webhook configurations themselves to
webhooks (kube-apiserver exempts them, or a broken webhook could never be removed).

Service references: there is no cluster network, so `clientConfig.service` resolves through an
annotation on that Service, `kubesim.dev/webhook-address: "127.0.0.1:9443"` (host:port where
the webhook listens); the certificate is still verified for `<service>.<namespace>.svc`, the
name kube-apiserver checks, so a chart's cert-manager Certificate works unchanged.

The call is synchronous (admission hooks run inside the store's write): the emulator waits for
the webhook, at most timeoutSeconds, as a write in kube-apiserver would. Webhooks therefore must
not call back into this emulator while answering.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import socket
import ssl
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import labelselector, patch
from .errors import ApiError
from .hooks import Admission
from .store import Store

GROUP = "admissionregistration.k8s.io"
CONFIG_KINDS = {"validating": "validatingwebhookconfigurations",
                "mutating": "mutatingwebhookconfigurations"}
ADDRESS_ANNOTATION = "kubesim.dev/webhook-address"
_OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


@dataclass
class Endpoint:
    """Where to connect and which name the serving certificate must carry."""

    host: str
    port: int
    path: str
    server_name: str

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}{self.path}"


class Webhooks:
    """The admission hook: run at the mutating and validating stages of every write."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, review: Admission) -> None:
        if review.group == GROUP and review.resource in CONFIG_KINDS.values():
            return
        for webhook in self._matching(review):
            self._call(webhook, review)

    # --- matching ----------------------------------------------------------------------------

    def _configurations(self, stage: str) -> list[dict[str, Any]]:
        rt = self.store.registry.get(GROUP, "v1", CONFIG_KINDS[stage])
        if rt is None:
            return []
        coll = self.store.collections.get(rt.group_resource)
        return [s.obj for s in coll.iter(None)] if coll else []

    def _matching(self, review: Admission) -> list[dict[str, Any]]:
        found = []
        for config in self._configurations(review.stage):  # sorted by name, as the apiserver
            for webhook in config.get("webhooks") or []:
                if self._matches(webhook, review):
                    found.append(webhook)
        return found

    def _matches(self, webhook: dict[str, Any], review: Admission) -> bool:
        subject = review.obj if review.obj is not None else review.old or {}
        namespace = (subject.get("metadata") or {}).get("namespace") or ""
        if not any(rule_matches(rule, review, namespace)
                   for rule in webhook.get("rules") or []):
            return False
        labels = [(o.get("metadata") or {}).get("labels") or {}
                  for o in (review.obj, review.old) if o is not None]
        if not any(labelselector.matches(webhook.get("objectSelector"), lab) for lab in labels):
            return False
        return self._namespace_matches(webhook.get("namespaceSelector"), review, namespace,
                                       labels)

    def _namespace_matches(self, selector: dict[str, Any] | None, review: Admission,
                           namespace: str, labels: list[dict[str, str]]) -> bool:
        if review.group == "" and review.resource == "namespaces":
            return any(labelselector.matches(selector, lab) for lab in labels)
        if not namespace:
            return True  # cluster-scoped objects ignore namespaceSelector
        rt = self.store.registry.get("", "v1", "namespaces")
        coll = self.store.collections.get(rt.group_resource) if rt else None
        found = coll.get("", namespace) if coll else None
        ns_labels = found.obj["metadata"].get("labels") or {} if found else {}
        return labelselector.matches(selector, ns_labels)

    # --- calling -----------------------------------------------------------------------------

    def _call(self, webhook: dict[str, Any], review: Admission) -> None:
        name = webhook.get("name", "")
        request = self._request(review)
        try:
            endpoint = self._endpoint(webhook.get("clientConfig") or {})
            answer = post(endpoint, webhook, {"apiVersion": "admission.k8s.io/v1",
                                              "kind": "AdmissionReview", "request": request})
            response = answer.get("response") or {}
            if response.get("uid") != request["uid"]:
                raise ValueError(f"expected response.uid={request['uid']!r}, "
                                 f"got {response.get('uid')!r}")
        except Exception as exc:  # any failure to get an answer is the webhook's failure
            if webhook.get("failurePolicy", "Fail") == "Ignore":
                return
            raise ApiError(500, "InternalError", f"Internal error occurred: failed calling "
                           f'webhook "{name}": {exc}', {"causes": [{"message": str(exc)}]},
                           ) from None
        if not response.get("allowed"):
            raise denied(name, response.get("status") or {})
        if review.stage == "mutating" and response.get("patch") and review.obj is not None:
            ops = json.loads(base64.b64decode(response["patch"]))
            patched = patch.json_patch(review.obj, ops)
            review.obj.clear()
            review.obj.update(patched)

    def _request(self, review: Admission) -> dict[str, Any]:
        rt = self.store.registry.get(review.group, review.version, review.resource)
        kind = {"group": review.group, "version": review.version,
                "kind": rt.kind if rt else ""}
        resource = {"group": review.group, "version": review.version,
                    "resource": review.resource}
        subject = review.obj if review.obj is not None else review.old or {}
        meta = subject.get("metadata") or {}
        subresource = review.request.subresource if review.request else ""
        return {
            "uid": str(uuid.uuid4()), "kind": kind, "resource": resource,
            "requestKind": kind, "requestResource": resource,
            **({"subResource": subresource} if subresource else {}),
            "name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
            "operation": review.operation,
            "userInfo": {"username": review.identity.user,
                         "groups": list(review.identity.groups)},
            "object": review.obj, "oldObject": review.old, "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS[review.operation]},
        }

    def _endpoint(self, client_config: dict[str, Any]) -> Endpoint:
        if client_config.get("url"):
            parts = urlsplit(client_config["url"])
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError(f"webhook url must be https: {client_config['url']}")
            return Endpoint(parts.hostname, parts.port or 443,
                            parts.path + (f"?{parts.query}" if parts.query else ""),
                            parts.hostname)
        ref = client_config.get("service") or {}
        namespace, name = ref.get("namespace", ""), ref.get("name", "")
        rt = self.store.registry.get("", "v1", "services")
        coll = self.store.collections.get(rt.group_resource) if rt else None
        service = coll.get(namespace, name) if coll else None
        if service is None:
            raise ValueError(f'service "{namespace}/{name}" not found')
        address = (service.obj["metadata"].get("annotations") or {}).get(ADDRESS_ANNOTATION)
        if not address:
            raise ValueError(f'service "{namespace}/{name}" has no {ADDRESS_ANNOTATION} '
                             f"annotation (the emulator has no cluster network)")
        host, _, port = address.rpartition(":")
        return Endpoint(host, int(port), ref.get("path") or "/", f"{name}.{namespace}.svc")


def rule_matches(rule: dict[str, Any], review: Admission, namespace: str) -> bool:
    """admission/plugin/webhook/predicates/rules: operations, group, version, resource, scope."""
    subresource = review.request.subresource if review.request else ""
    if not _has(rule.get("operations") or [], review.operation):
        return False
    if not _has(rule.get("apiGroups") or [], review.group) or \
            not _has(rule.get("apiVersions") or [], review.version):
        return False
    scope = rule.get("scope", "*")
    cluster_scoped = not namespace
    if (scope == "Cluster" and not cluster_scoped) or (scope == "Namespaced" and cluster_scoped):
        return False
    for candidate in rule.get("resources") or []:
        res, _, sub = candidate.partition("/")
        if res in ("*", review.resource) and sub in ("*", subresource):
            return True
    return False


def _has(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def denied(name: str, status: dict[str, Any]) -> ApiError:
    """webhookerrors.ToStatusErr: the webhook's own status, prefixed with who denied it."""
    prefix = f'admission webhook "{name}" denied the request'
    code = int(status.get("code") or 0)
    reason = status.get("reason") or ""
    if status.get("message"):
        message = f"{prefix}: {status['message']}"
    elif reason:
        message = f"{prefix}: {reason}"
    else:
        message = f"{prefix} without explanation"
    return ApiError(code if code >= 400 else 400, reason, message, status.get("details"))


class _Connection(http.client.HTTPSConnection):
    """HTTPS to one address while verifying the certificate for another name (services)."""

    def __init__(self, endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(endpoint.host, endpoint.port, timeout=timeout, context=context)
        self._server_name = endpoint.server_name
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_name)


def post(endpoint: Endpoint, webhook: dict[str, Any], review: dict[str, Any]) -> Any:
    """POST the review; verify the server against caBundle (or the system roots)."""
    bundle = (webhook.get("clientConfig") or {}).get("caBundle")
    context = ssl.create_default_context(
        cadata=base64.b64decode(bundle).decode() if bundle else None)
    timeout = float(webhook.get("timeoutSeconds") or 10)
    # kube-apiserver tells the webhook its deadline in the query, as ?timeout=10s.
    endpoint = dataclasses.replace(endpoint, path=endpoint.path + (
        "&" if "?" in endpoint.path else "?") + f"timeout={int(timeout)}s")
    connection = _Connection(endpoint, context, timeout)
    try:
        connection.request("POST", endpoint.path, json.dumps(review),
                           {"Content-Type": "application/json", "Accept": "application/json"})
        reply = connection.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise ValueError(f'failed to call webhook: Post "{endpoint.url}": '
                             f"status {reply.status}")
        return json.loads(body)
    except ssl.SSLCertVerificationError as exc:
        # Worded as Go's crypto/tls and x509 report it in kube-apiserver.
        raise ValueError(f'failed to call webhook: Post "{endpoint.url}": tls: failed to '
                         "verify certificate: x509: certificate signed by unknown authority "
                         f"({exc.verify_message})") from exc
    except TimeoutError as exc:  # Go's word for a request past its deadline
        raise ValueError(f'failed to call webhook: Post "{endpoint.url}": '
                         "context deadline exceeded") from exc
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f'failed to call webhook: Post "{endpoint.url}": {exc}') from exc
    finally:
        connection.close()
