"""kube-scheduler's default filters (cordon, taints, node affinity, resource fit) and its message.

Also the taint-eviction rule for ``NoExecute`` taints, which shares the toleration matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .objects import Obj
from .specs import Taint
from .state import NodeState


@dataclass
class FilterResult:
    reasons: list[str]
    unresolvable: bool


def untolerated_taint(taints: list[Taint], tolerations: list[Obj]) -> Taint | None:
    """First NoSchedule/NoExecute taint no toleration tolerates (as TaintToleration filters)."""
    for taint in taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(tol, taint) for tol in tolerations):
            return taint
    return None


def _tolerates(tol: Obj, taint: Taint) -> bool:
    if tol.get("effect") and tol["effect"] != taint.effect:
        return False
    key, operator = tol.get("key") or "", tol.get("operator") or "Equal"
    if key and key != taint.key:
        return False
    if operator == "Exists":
        return True
    return bool(key) and (tol.get("value") or "") == taint.value


def matches_node_selector(pod: Obj, labels: dict[str, str], node_name: str) -> bool:
    """nodeSelector plus required node affinity, as the NodeAffinity filter checks them."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node_name}
    return any(_term_matches(term, labels, fields) for term in terms)


def _term_matches(term: Obj, labels: dict[str, str], fields: dict[str, str]) -> bool:
    exprs = term.get("matchExpressions") or []
    field_exprs = term.get("matchFields") or []
    if not exprs and not field_exprs:
        return False  # an empty term matches no objects
    return (all(_expr_matches(e, labels) for e in exprs)
            and all(_expr_matches(e, fields) for e in field_exprs))


def _expr_matches(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    present, value = key in labels, labels.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            number, bound = int(str(value)), int(values[0])
        except ValueError:
            return False
        return number > bound if op == "Gt" else number < bound
    return False


CORDONED = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


def eviction_delay(taints: list[Taint], tolerations: list[Obj]) -> float | None:
    """Seconds before NoExecute ``taints`` evict a pod, None for never (taint-eviction rules).

    An untolerated taint evicts at once; otherwise the smallest ``tolerationSeconds`` among the
    tolerations in use applies, and without any the pod stays.
    """
    used: list[Obj] = []
    for taint in taints:
        matching = [t for t in tolerations if _tolerates(t, taint)]
        if not matching:
            return 0.0
        used.extend(matching)
    bounded = [float(t["tolerationSeconds"]) for t in used
               if t.get("tolerationSeconds") is not None]
    return max(0.0, min(bounded)) if bounded else None


def filter_node(pod: Obj, requests: dict[str, Decimal], node: NodeState) -> FilterResult:
    """Run kube-scheduler's default filters in its order; stop at the first failing plugin."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if node.unschedulable and untolerated_taint([CORDONED], tolerations):
        return FilterResult(["node(s) were unschedulable"], True)
    taint = untolerated_taint(node.taints, tolerations)
    if taint is not None:
        # As in kube-scheduler 1.37, the message does not name the taint.
        return FilterResult(["node(s) had untolerated taint(s)"], True)
    if not matches_node_selector(pod, node.labels, node.spec.name):
        return FilterResult(["node(s) didn't match Pod's node affinity/selector"], True)
    return _fit_resources(requests, node)


def _fit_resources(requests: dict[str, Decimal], node: NodeState) -> FilterResult:
    reasons: list[str] = []
    unresolvable = False
    if len(node.pods) + 1 > node.allocatable["pods"]:
        reasons.append("Too many pods")
    for name in sorted(requests):
        wanted = requests[name]
        if wanted <= 0:
            continue
        allocatable = node.allocatable.get(name, Decimal(0))
        if wanted > allocatable - node.used.get(name, Decimal(0)):
            reasons.append(f"Insufficient {name}")
            # More than the whole node has: evicting pods could never help.
            unresolvable = unresolvable or wanted > allocatable
    return FilterResult(reasons, unresolvable)


def unschedulable_message(results: Sequence[FilterResult]) -> str:
    """kube-scheduler's FitError text, preemption (PostFilter) part included."""
    if not results:
        return "no nodes available to schedule pods"
    total = len(results)
    histogram: dict[str, int] = {}
    preemption: dict[str, int] = {}
    for result in results:
        for reason in result.reasons:
            histogram[reason] = histogram.get(reason, 0) + 1
        verdict = ("Preemption is not helpful for scheduling" if result.unresolvable
                   else "No preemption victims found for incoming pod")
        preemption[verdict] = preemption.get(verdict, 0) + 1

    def joined(counts: dict[str, int]) -> str:
        return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))

    return (f"0/{total} nodes are available: {joined(histogram)}. "
            f"preemption: 0/{total} nodes are available: {joined(preemption)}.")
