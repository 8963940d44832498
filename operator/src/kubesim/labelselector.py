"""metav1.LabelSelector objects ({matchLabels, matchExpressions}) as label predicates.

Used where the API carries selectors as objects rather than query strings: ClusterRole
aggregation rules and webhook namespace/object selectors. Never parses query strings itself;
those go through selectors.label_matcher, which this module reuses.
"""

from __future__ import annotations

from typing import Any

from .selectors import label_matcher


def to_query(selector: dict[str, Any]) -> str:
    """The selector in query-string syntax, as metav1.FormatLabelSelector writes it."""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
        else:
            raise ValueError(f"{op!r} is not a valid label selector operator")
    return ",".join(terms)


def matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """An absent or empty selector matches everything, as metav1.LabelSelectorAsSelector
    makes it for webhook selectors and aggregation rules."""
    if not selector:
        return True
    predicate = label_matcher(to_query(selector))
    return predicate is None or predicate({"metadata": {"labels": labels or {}}})
