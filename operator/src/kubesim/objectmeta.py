"""ObjectMeta validation shared by every kind: names (DNS-1123 subdomains) and labels."""

from __future__ import annotations

import re
from typing import Any

from .errors import FieldError

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

_DNS_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]"
            "([-a-z0-9]*[a-z0-9])?)*')")


_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
              "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
              "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def validate(meta: dict[str, Any], dns_label: bool = False) -> list[FieldError]:
    """Name and label checks every kind gets (ValidateObjectMeta); namespaces' names must be
    DNS labels rather than subdomains."""
    problems: list[FieldError] = []
    name = meta.get("name")
    if not name:
        problems.append(FieldError("metadata.name", "FieldValueRequired",
                                   "name or generateName is required", show_value=False))
    elif dns_label and "." in name:  # kube-apiserver 1.37 says so before anything else
        problems.append(FieldError("metadata.name", "FieldValueInvalid", "must not contain dots",
                                   name))
    elif dns_label and (len(name) > 63 or not _NAME_RE.match(name)):
        problems.append(FieldError("metadata.name", "FieldValueInvalid", _LABEL_MSG, name))
    elif len(name) > 253 or not _NAME_RE.match(name):
        problems.append(FieldError("metadata.name", "FieldValueInvalid", _DNS_MSG, name))
    for key, value in (meta.get("labels") or {}).items():
        label_name = key.rsplit("/", 1)[-1]
        if not isinstance(value, str) or len(label_name) > 63 or not _LABEL_NAME_RE.match(
                label_name):
            problems.append(FieldError("metadata.labels", "FieldValueInvalid",
                                       "name part must consist of alphanumeric characters, '-', "
                                       "'_' or '.'", key))
        elif value and (len(value) > 63 or not _LABEL_NAME_RE.match(value)):
            problems.append(FieldError("metadata.labels", "FieldValueInvalid",
                                       "a valid label must be an empty string or consist of "
                                       "alphanumeric characters, '-', '_' or '.'", value))
    return problems
