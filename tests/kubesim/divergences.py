"""Conformance tests that kube-apiserver v1.37.2 answers otherwise than kubesim does today.

Each was found by running the suite on the real control plane (Kubernetes is the reference),
and each entry says what the real server does. Until kubesim (or the test) is fixed the test
runs on kubesim only: it gets no real-server variant, and this list is the work left. It must
only shrink; `tests/kubesim/SERVER_BUGS.md` records the fixes.
"""

from __future__ import annotations

import os

from gpurental_dev import substrate as substrates

KUBESIM_DIFFERS = {
    "test_api_lifecycle.py::test_graceful_deletion_completes_when_the_period_ends":
        "kube-apiserver never ends a bound pod's grace period itself: its kubelet confirms (or "
        "PodGC force-deletes it once its node is found missing); kubesim's server does",
    "test_webhooks.py::test_service_reference_with_matching_certificate":
        "Services resolve through EndpointSlices, which refuse loopback addresses, so no "
        "Service can reach a webhook served on this machine's loopback",
}

# What only kubesim has: its own flags (history size), admin endpoints, fault injection.
KUBESIM_ONLY = {
    "test_webhooks.py::test_service_reference_resolves_through_the_address_annotation":
        "the address annotation is kubesim's own",
    "test_api_status.py::test_pod_log_subresource":
        "logs come from a kubelet; kubesim serves an annotation instead",
    "test_api_watch.py::test_too_old_version_is_410_gone": "kubesim's --history-size",
    "test_api_watch.py::test_kubernetes_client_raises_410": "kubesim's --history-size",
}


def substrates_for(nodeid: str, kubesim_only: bool = False) -> list[str]:
    """The substrates a conformance test runs on: every selected one, or kubesim alone for
    what differs or is kubesim's own. GPURENTAL_TRY_DIVERGENCES=1 runs the divergences on
    the real server too (to burn the list down); never set in CI."""
    key = nodeid.split("[", 1)[0].rsplit("/", 1)[-1]
    if kubesim_only or key in KUBESIM_ONLY or (
            key in KUBESIM_DIFFERS and not os.environ.get("GPURENTAL_TRY_DIVERGENCES")):
        return [substrates.KUBESIM]
    return substrates.selected()
