"""AdmissionReview v1: typed request structure, validation, and response constructors.

Two error channels, kept apart on purpose:

* :class:`BadReview`: the request itself is malformed. The HTTP layer answers 4xx with
  ``str(error)`` as a one-line message. The apiserver never sends these; a human or a
  broken client does.
* Anything else raised while handling a well-formed review is *our* bug. The handler
  answers ``allowed: true`` with the request's uid, because a pod must never be lost to a
  tracing problem.

Response constructors mirror controller-runtime's ``Allowed``/``Patched``: the handler
never assembles response dicts by hand.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.core.patch import Patch

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The apiserver truncates longer warnings; we cut them ourselves so the cut is deliberate.
MAX_WARNING_LENGTH = 256
MAX_WARNINGS = 10


class BadReview(ValueError):
    """The body is not a usable AdmissionReview; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of ``request`` the injector uses, checked and typed.

    ``object`` is the pod exactly as sent, a plain dict, never a typed model, so no field is
    lost on the way to the patch."""

    uid: str
    api_version: str
    operation: str
    namespace: str
    name: str
    object: Mapping[str, Any]
    dry_run: bool
    username: str


def parse_review(body: bytes) -> AdmissionRequest:
    """Decode and check an AdmissionReview body. Raises :class:`BadReview` with a message
    that names what is wrong."""
    if not body.strip():
        raise BadReview("empty body: expected an AdmissionReview JSON object")
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise BadReview(f"invalid JSON: {err}") from None
    if not isinstance(review, dict):
        raise BadReview(f"expected an AdmissionReview object, got a JSON {type(review).__name__}")
    kind, api_version = review.get("kind"), review.get("apiVersion")
    if kind != KIND:
        raise BadReview(f"kind is {kind!r}, expected {KIND!r}")
    if api_version != API_VERSION:
        raise BadReview(f"apiVersion is {api_version!r}, expected {API_VERSION!r}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing")
    resource_kind = request.get("kind")
    if not isinstance(resource_kind, dict):
        raise BadReview("request.kind is missing: expected group '', version v1, kind Pod")
    group, kind_name = resource_kind.get("group", ""), resource_kind.get("kind")
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise BadReview("request.object is missing: expected a Pod")
    object_kind = obj.get("kind", "Pod")
    if group != "" or kind_name != "Pod" or object_kind != "Pod":
        shown = f"{group}/{kind_name}" if group else kind_name
        raise BadReview(f"request is for {shown!r} (object kind {object_kind!r}); this webhook only handles Pods")
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        raise BadReview("request.operation is missing")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadReview("request.object.metadata must be an object")
    namespace = request.get("namespace") or (metadata or {}).get("namespace") or ""
    if not isinstance(namespace, str):
        raise BadReview("request.namespace must be a string")
    user = request.get("userInfo")
    return AdmissionRequest(
        uid=uid,
        api_version=api_version,
        operation=operation,
        namespace=namespace,
        name=str(request.get("name") or ""),
        object=obj,
        dry_run=request.get("dryRun") is True,
        username=str(user.get("username", "")) if isinstance(user, dict) else "",
    )


def allowed(request: AdmissionRequest, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Admit the pod unchanged."""
    return _review(request.uid, {"allowed": True}, warnings)


def patched(request: AdmissionRequest, patch: Patch, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Admit the pod with ``patch`` applied; an empty patch is a plain :func:`allowed`."""
    if not patch.operations:
        return allowed(request, warnings)
    response = {
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(patch.body).decode("ascii"),
    }
    return _review(request.uid, response, warnings)


def _review(uid: str, response: dict[str, Any], warnings: Sequence[str]) -> dict[str, Any]:
    response = {"uid": uid, **response}
    if warnings:
        response["warnings"] = [_clip(w) for w in warnings[:MAX_WARNINGS]]
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def _clip(warning: str) -> str:
    # One line each: kubectl prints a warning per line, and a raw newline would split it.
    line = warning.replace("\r", " ").replace("\n", " ")
    return line if len(line) <= MAX_WARNING_LENGTH else line[: MAX_WARNING_LENGTH - 3] + "..."


def render(review: Mapping[str, Any]) -> bytes:
    """Serialize a review for the wire."""
    return orjson.dumps(review)
