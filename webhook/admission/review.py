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

from webhook.admission.jsonbounds import MAX_DEPTH, MAX_VALUES, nested_deeper_than, value_count
from webhook.core.bounds import a_json_type, clip, describe, shown
from webhook.core.patch import Patch
from webhook.core.shape import shape_problem

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The apiserver truncates longer warnings; we cut them ourselves so the cut is deliberate.
MAX_WARNING_LENGTH = 256
MAX_WARNINGS = 10
MAX_UID_LENGTH = 128


class BadReview(ValueError):
    """The body is not a usable AdmissionReview; ``status`` is the HTTP status to answer and
    ``reason`` a short code for the refusal metric. The message is one bounded line: user
    values in it are clipped or described, never rendered whole (see webhook.core.bounds)."""

    def __init__(self, message: str, status: int = 400, reason: str = "bad-review") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


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
    that names what is wrong.

    ``null`` counts as absent for every field, as in Kubernetes; any other wrong type, in
    the envelope or in a pod field the injector reads (:mod:`webhook.core.shape`), is a
    400. Nesting past :data:`~webhook.admission.jsonbounds.MAX_DEPTH` is refused before
    decoding. Time and memory: linear in the body, one decode and one pass."""
    if not body.strip():
        raise BadReview("empty body: expected an AdmissionReview JSON object", reason="empty")
    values = value_count(body)
    if values > MAX_VALUES:
        # 413 like the byte cap: decoding this many values would pass the memory budget.
        raise BadReview(
            f"body holds about {values:,} JSON values, more than the {MAX_VALUES:,} allowed",
            status=413,
            reason="too-many-values",
        )
    if nested_deeper_than(body, MAX_DEPTH):
        raise BadReview(f"JSON nested deeper than {MAX_DEPTH} levels", reason="too-deep")
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise BadReview(f"invalid JSON: {clip(str(err))}", reason="invalid-json") from None
    if not isinstance(review, dict):
        raise BadReview(f"expected an AdmissionReview object, got {a_json_type(review)}")
    kind, api_version = review.get("kind"), review.get("apiVersion")
    if kind != KIND:
        raise BadReview(f"kind is {describe(kind)}, expected {KIND!r}")
    if api_version != API_VERSION:
        raise BadReview(f"apiVersion is {describe(api_version)}, expected {API_VERSION!r}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request object")
    uid = _string(request, "uid")
    if not uid:
        raise BadReview("request.uid is missing")
    if len(uid) > MAX_UID_LENGTH:
        # The answer must echo the uid; a real one is a 36-character UUID.
        raise BadReview(f"request.uid is {len(uid):,} characters, more than {MAX_UID_LENGTH}")
    resource_kind = request.get("kind")
    if not isinstance(resource_kind, dict):
        raise BadReview("request.kind is missing: expected group '', version v1, kind Pod")
    group, kind_name = resource_kind.get("group") or "", resource_kind.get("kind")
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise BadReview("request.object is missing: expected a Pod")
    object_kind = obj.get("kind") or "Pod"
    if group != "" or kind_name != "Pod" or object_kind != "Pod":
        target = f"{shown(group)}/{shown(kind_name)}" if group else shown(kind_name)
        raise BadReview(
            f"request is for {target!r} (object kind {describe(object_kind)}); this webhook only handles Pods"
        )
    operation = _string(request, "operation")
    if not operation:
        raise BadReview("request.operation is missing")
    problem = shape_problem(obj)
    if problem is not None:
        raise BadReview(f"request.object.{problem}", reason="malformed-pod")
    metadata = obj.get("metadata") or {}
    namespace = _string(request, "namespace") or metadata.get("namespace") or ""
    user = request.get("userInfo")
    if user is not None and not isinstance(user, dict):
        raise BadReview(f"request.userInfo must be an object, not {a_json_type(user)}")
    return AdmissionRequest(
        uid=uid,
        api_version=api_version,
        operation=operation,
        namespace=namespace,
        name=_string(request, "name"),
        object=obj,
        dry_run=request.get("dryRun") is True,
        username=_string(user, "username", "request.userInfo") if user else "",
    )


def _string(parent: Mapping[str, Any], key: str, where: str = "request") -> str:
    """``parent[key]`` if it is a string, ``""`` if absent or null; else a :class:`BadReview`."""
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadReview(f"{where}.{key} must be a string, not {a_json_type(value)}")
    return value


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


def clip_warnings(warnings: Sequence[str]) -> list[str]:
    """At most :data:`MAX_WARNINGS` warnings, each one line of at most
    :data:`MAX_WARNING_LENGTH` characters: what the response, the span and the log carry."""
    return [_clip(w) for w in warnings[:MAX_WARNINGS]]


def _review(uid: str, response: dict[str, Any], warnings: Sequence[str]) -> dict[str, Any]:
    response = {"uid": uid, **response}
    if warnings:
        response["warnings"] = clip_warnings(warnings)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def _clip(warning: str) -> str:
    # One line each: kubectl prints a warning per line, and a raw newline would split it.
    line = warning.replace("\r", " ").replace("\n", " ")
    return line if len(line) <= MAX_WARNING_LENGTH else line[: MAX_WARNING_LENGTH - 3] + "..."


def render(review: Mapping[str, Any]) -> bytes:
    """Serialize a review for the wire."""
    return orjson.dumps(review)
