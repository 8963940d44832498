"""Structural-schema handling of custom resources: defaulting, pruning and validation.

Follows the apiextensions-apiserver order: defaults are applied, unknown fields pruned, then the
object is validated against the CRD's openAPIV3Schema. Messages copy kube-openapi's wording so
tests written against a real cluster read the same. CEL (`x-kubernetes-validations`) is not run.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from .errors import FieldError

_ROOT_META = ("apiVersion", "kind", "metadata")
# go-openapi strfmt's date-time: RFC 3339, fractional seconds and zone optional.
_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d:?\d\d)?$")


class Outcome:
    """The errors and unknown (pruned) field paths found while processing one object."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.unknown: list[str] = []


def admit(obj: dict[str, Any], schema: dict[str, Any] | None) -> Outcome:
    """Default, prune and validate `obj` in place against a CRD version's schema."""
    out = Outcome()
    if not schema:
        return out
    _default(obj, schema)
    _prune_object(obj, schema, "", out, root=True)
    for key, sub in (schema.get("properties") or {}).items():
        if key in _ROOT_META:
            continue
        if key in obj:
            _validate(obj[key], sub, key, out)
    for key in schema.get("required") or []:
        if key not in obj and key not in _ROOT_META:
            out.errors.append(FieldError(key, "FieldValueRequired", show_value=False))
    return out


# --- defaulting ------------------------------------------------------------------------------

def _default(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if "default" in sub and (key not in value or
                                     (value[key] is None and not sub.get("nullable"))):
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in props:
                    _default(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


# --- pruning ---------------------------------------------------------------------------------

def _prune_object(value: dict[str, Any], schema: dict[str, Any], path: str, out: Outcome,
                  root: bool = False) -> None:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    embedded = schema.get("x-kubernetes-embedded-resource")
    for key in list(value):
        if (root or embedded) and key == "metadata":
            continue  # ObjectMeta is validated as such, never pruned by the CRD's schema
        sub = props.get(key)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is None:
            if (root or embedded) and key in _ROOT_META:
                continue
            if preserve or extra is True:
                continue
            out.unknown.append(f"{path}{key}")
            del value[key]
            continue
        _prune(value[key], sub, f"{path}{key}", out)


def _prune(value: Any, schema: dict[str, Any], path: str, out: Outcome) -> None:
    if isinstance(value, dict):
        _prune_object(value, schema, path + ".", out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{i}]", out)


# --- validation ------------------------------------------------------------------------------

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string",
               dict: "object", list: "array", type(None): "null"}


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    return True


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _validate(value: Any, schema: dict[str, Any], path: str, out: Outcome) -> None:
    errors = out.errors
    if value is None:
        if not schema.get("nullable") and schema.get("type") and not schema.get(
                "x-kubernetes-int-or-string"):
            errors.append(FieldError(path, "FieldValueTypeInvalid",
                                     f'{path} in body must be of type {schema["type"]}: "null"',
                                     "null"))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            actual = _TYPE_NAMES.get(type(value), "unknown")
            errors.append(FieldError(path, "FieldValueTypeInvalid",
                                     f'{path} in body must be of type integer,string: '
                                     f'"{actual}"', actual))
            return
    elif schema.get("type") and not _type_ok(value, schema["type"]):
        actual = _TYPE_NAMES.get(type(value), "unknown")
        errors.append(FieldError(path, "FieldValueTypeInvalid",
                                 f'{path} in body must be of type {schema["type"]}: "{actual}"',
                                 actual))
        return
    _check_enum(value, schema, path, errors)
    if isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, path, out)
    elif isinstance(value, dict):
        _check_object(value, schema, path, out)


def _check_enum(value: Any, schema: dict[str, Any], path: str, errors: list[FieldError]) -> None:
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(f'"{e}"' if isinstance(e, str) else str(e) for e in enum)
        errors.append(FieldError(path, "FieldValueNotSupported",
                                 f"supported values: {supported}", value))


def _check_string(value: str, schema: dict[str, Any], path: str,
                  errors: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError(path, "FieldValueTooLong",
                                 f"may not be more than {schema['maxLength']} bytes",
                                 show_value=False))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(FieldError(path, "FieldValueInvalid",
                                 f"{path} in body should be at least {schema['minLength']} "
                                 "chars long", value))
    pattern = schema.get("pattern")
    if pattern and not _regex(pattern).search(value):
        errors.append(FieldError(path, "FieldValueInvalid",
                                 f"{path} in body should match '{pattern}'", value))
    if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
        # kube-openapi's format check names the property alone, not its path.
        leaf = path.rsplit(".", 1)[-1]
        errors.append(FieldError(path, "FieldValueInvalid",
                                 f"{leaf} in body must be of type date-time: \"{value}\"", value))


def _num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def _check_number(value: float, schema: dict[str, Any], path: str,
                  errors: list[FieldError]) -> None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None:
        if schema.get("exclusiveMinimum") and value <= lo:
            errors.append(FieldError(path, "FieldValueInvalid",
                                     f"{path} in body should be greater than {_num(lo)}", value))
        elif value < lo:
            errors.append(FieldError(path, "FieldValueInvalid",
                                     f"{path} in body should be greater than or equal to "
                                     f"{_num(lo)}", value))
    if hi is not None:
        if schema.get("exclusiveMaximum") and value >= hi:
            errors.append(FieldError(path, "FieldValueInvalid",
                                     f"{path} in body should be less than {_num(hi)}", value))
        elif value > hi:
            errors.append(FieldError(path, "FieldValueInvalid",
                                     f"{path} in body should be less than or equal to "
                                     f"{_num(hi)}", value))
    mult = schema.get("multipleOf")
    if mult and (value / mult) != int(value / mult):
        errors.append(FieldError(path, "FieldValueInvalid",
                                 f"{path} in body should be a multiple of {_num(mult)}", value))


def _check_array(value: list[Any], schema: dict[str, Any], path: str, out: Outcome) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.errors.append(FieldError(path, "FieldValueTooMany",
                                     f"must have at most {schema['maxItems']} items", len(value)))
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.errors.append(FieldError(path, "FieldValueInvalid",
                                     f"{path} in body should have at least "
                                     f"{schema['minItems']} items", value))
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                out.errors.append(FieldError(f"{path}[{i}]", "FieldValueDuplicate", "", item))
            seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", out)


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str,
                  out: Outcome) -> None:
    props = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in value:
            out.errors.append(FieldError(f"{path}.{key}", "FieldValueRequired",
                                         show_value=False))
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        sub = props.get(key)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is not None:
            _validate(item, sub, f"{path}.{key}", out)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        out.errors.append(FieldError(path, "FieldValueTooMany",
                                     f"must have at most {schema['maxProperties']} items",
                                     len(value)))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        out.errors.append(FieldError(path, "FieldValueInvalid",
                                     f"{path} in body should have at least "
                                     f"{schema['minProperties']} properties", value))
