"""Image references: which ones the kubelet can parse, and how containerd names them."""

from __future__ import annotations

import re

# distribution/reference's grammar, simplified: [domain[:port]/]path[:tag][@digest], with
# lower-case path components.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@sha256:[0-9a-f]{64})?$")


def _reference_error(image: str) -> str:
    """distribution/reference's parse error; upper case gets its own message."""
    first, slash, rest = image.partition("/")
    docker_hub = not slash or ("." not in first and ":" not in first and first != "localhost"
                               and first.lower() == first)
    remote = (image if docker_hub else rest).split("@")[0]
    remote = remote.rsplit(":", 1)[0] if ":" in remote.rsplit("/", 1)[-1] else remote
    if docker_hub and "/" not in remote:
        remote = f"library/{remote}"
    if remote.lower() != remote and IMAGE_REFERENCE.match(image.lower()):
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    return "invalid reference format"


def full_image_ref(image: str) -> str:
    """Normalise an image name as containerd reports it (``docker.io/library/x:latest``)."""
    name, digest = image, ""
    if "@" in name:
        name, digest = name.split("@", 1)
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def invalid_reference_message(image: str) -> str:
    """The kubelet's InvalidImageName message for an image reference it cannot parse."""
    return (f'Failed to apply default image tag "{image}": couldn\'t parse image name '
            f'"{image}": {_reference_error(image)}')
