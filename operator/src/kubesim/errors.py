"""API errors as kube-apiserver shapes them: a `Status` body with reason, code and details."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the client as a `Status` object."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(plural: str, group: str) -> str:
    """`pods` for core, `gpurentals.gpurental.dev` for everything else."""
    return f"{plural}.{group}" if group else plural


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found',
                    _details(name, group, plural))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists',
                    _details(name, group, plural))


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    why = why or ("the object has been modified; please apply your changes "
                  "to the latest version and try again")
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
                    _details(name, group, plural))


class FieldError:
    """One `field.Error`: rendered as `<field>: <type>: <value>: <detail>`."""

    def __init__(self, field: str, kind: str, detail: str = "", value: Any = None,
                 show_value: bool = True) -> None:
        self.field = field
        self.kind = kind  # e.g. "FieldValueInvalid"
        self.detail = detail
        self.value = value
        self.show_value = show_value

    _LABELS = {
        "FieldValueInvalid": "Invalid value",
        "FieldValueRequired": "Required value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueTypeInvalid": "Invalid value",
    }

    def body(self) -> str:
        """The message without the field path, as in `causes[].message`."""
        label = self._LABELS.get(self.kind, "Invalid value")
        parts = [label]
        if self.show_value:
            parts.append(render_value(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


class Bare(str):
    """A value printed as is in a field error (e.g. Go's `0x0`), without quotes."""


def render_value(value: Any) -> str:
    """Go's `%#v`-ish rendering the apiserver uses for values in field errors."""
    if isinstance(value, Bare):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return str(value)


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 `Invalid`, message `Kind.group "name" is invalid: <errors>`."""
    what = f"{kind}.{group}" if group else kind
    joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    causes = [{"reason": e.kind, "message": e.body(), "field": e.field} for e in errors]
    details = _details(name, group, kind)
    details["causes"] = causes
    return ApiError(422, "Invalid", f'{what} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:  # noqa: E501
    return ApiError(405, "MethodNotAllowed", message, {})


def unknown_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


class PageNotFound(ApiError):
    """A path under no served group/version: kube-apiserver's mux answers plain text."""

    TEXT = "404 page not found\n"

    def __init__(self) -> None:
        super().__init__(404, "NotFound", self.TEXT.strip(), {})
