"""The cost budget of one admission, and the caps in the pure core that keep it.

The kube-apiserver calls the webhook *before* it validates a pod, so every pod any user can
submit reaches the injector, including ones the apiserver will reject a moment later. The
budget, enforced by design rather than by hoping inputs are small:

* **Time** is linear in the request's size with a small constant: every loop over user
  data is one pass, and membership tests use sets or dicts, never lists (issue 9 class 1).
  About 1 s of CPU for the largest request the 6 MiB body cap lets in, a few ms for a
  typical pod.
* **Output** is bounded, whatever the input: a value Kubernetes itself caps is cut to that
  cap (:data:`MAX_NAME_LENGTH`, :data:`MAX_LABEL_LENGTH`) before it is copied into every
  container, with one warning; and a pod whose injected form would be larger than etcd
  stores (:data:`MAX_INJECTED_POD_BYTES`) is left as it is, with the reason ``too-large``
  (class 2). The work of finding that out stops as soon as the budget is spent.
* **Memory** follows from both: at most about 64 MiB above idle for any single request.
* **Echo** of user input into messages is cut by :func:`clip` and :func:`describe`, which
  name the size of what they cut and never recurse into a value, so a 5 MB name or a list
  nested 1,000 deep costs a few hundred bytes of message (classes 4 and 6).

The HTTP side of the budget (header limits, read timeouts, the body cap) lives in
:mod:`webhook.http.limits`; the nesting limit of a decoded body in
:mod:`webhook.admission.jsonbounds`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

import orjson

#: A DNS-1123 subdomain: object names, owner and workload names, ConfigMap names.
MAX_NAME_LENGTH: Final = 253
#: A DNS-1123 label or a label value: namespaces, container names, the ``app`` label.
MAX_LABEL_LENGTH: Final = 63
#: etcd's default ``--max-request-bytes`` (1.5 MiB). The apiserver cannot store a pod that
#: is larger, so the injector never produces one; the size is measured as JSON, which is
#: larger than the protobuf etcd stores, so the check errs on the side of not injecting.
MAX_INJECTED_POD_BYTES: Final = 3 * 512 * 1024
#: The apiserver's limit on the total size of an object's annotations (keys and values).
MAX_ANNOTATIONS_BYTES: Final = 256 * 1024
#: Characters of user input quoted in a message, log field or span attribute.
MAX_ECHO: Final = 128


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` on one line, cut to ``limit`` characters with its full length named."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text):,} characters)"
    if "\n" in text or "\r" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


def describe(value: object, limit: int = MAX_ECHO) -> str:
    """A short, one-line description of any decoded JSON or YAML value for a message.

    Strings are quoted and clipped; numbers, booleans and null are shown; lists and objects
    are described by their type and size, never rendered, so the cost is constant whatever
    the nesting (``repr`` of a list nested 1,000 deep raises RecursionError)."""
    if isinstance(value, str):
        return repr(clip(value, limit))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # str() of an int over 4,300 digits raises ValueError; say how big it is instead.
        return str(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length():,} bits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return f"an object of {len(value):,} keys"
    if isinstance(value, list):
        return f"a list of {len(value):,} items"
    return f"a {type(value).__name__}"


def shown(value: object, limit: int = MAX_ECHO) -> str:
    """A user value as it reads in a sentence: a string as it is (clipped), anything else
    described (see :func:`describe`)."""
    return clip(value, limit) if isinstance(value, str) else describe(value, limit)


def json_type(value: object) -> str:
    """The JSON name of ``value``'s type, for "must be an object, not a list" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def a_json_type(value: object) -> str:
    """``json_type`` with its article: "an object", "a list", "null"."""
    name = json_type(value)
    if name == "null":
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (a value Kubernetes caps at ``limit``)."""
    return text if len(text) <= limit else text[:limit]


#: JSON bytes a patch operation adds around its value ("op", "path", punctuation).
PATCH_OP_OVERHEAD: Final = 64


def json_size(value: Any) -> int:
    """The size of ``value`` written as compact JSON (the pod as the apiserver stores it).

    orjson when it can; values it cannot write (YAML's sets, bytes, integers over 64 bits,
    only ``inject`` sees those) are counted through the standard library."""
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return len(json.dumps(value, default=str, separators=(",", ":")))


def annotations_size(annotations: Iterable[tuple[Any, Any]]) -> int:
    """Bytes of keys and values, as the apiserver counts them against its 256 KiB limit."""
    return sum(len(str(k)) + (len(v) if isinstance(v, str) else json_size(v)) for k, v in annotations)


#: The most one app container can grow by, names capped: OTEL_RESOURCE_ATTRIBUTES with a
#: workload, CronJob, namespace and container name percent-encoded at 12 bytes a character
#: (4-byte UTF-8), the service name, the other variables, the helpers and a patch operation
#: each: under 11 KiB. Rounded up, so a pod that cannot reach the budget is not weighed.
MAX_GROWTH_PER_CONTAINER: Final = 16 * 1024
#: The most the sidecar, its volume and the status annotation add beyond the containers'
#: share (the status names each container once: counted in the per-container bound).
MAX_FIXED_GROWTH: Final = 8 * 1024


def may_exceed(pod_bytes: int, containers: int, limit: int) -> bool:
    """Whether a pod of ``pod_bytes`` with ``containers`` app containers could grow past
    ``limit`` when injected. When it cannot, nothing needs weighing, which keeps a typical
    admission free of the budget's cost."""
    return pod_bytes + containers * MAX_GROWTH_PER_CONTAINER + MAX_FIXED_GROWTH > limit


class OverBudget(Exception):
    """The injected pod would be larger than :data:`MAX_INJECTED_POD_BYTES`."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size:,} bytes")
        self.size, self.limit = size, limit


class Budget:
    """Bytes the injected pod may grow by, spent as the mutation goes: it stops at the
    first container that would overspend it, so the work of finding a pod too large is
    bounded by the budget, not by the pod."""

    def __init__(self, pod_bytes: int, limit: int = MAX_INJECTED_POD_BYTES) -> None:
        self.size, self.limit = pod_bytes, limit
        self._check()

    def spend(self, size: int) -> None:
        """Add ``size`` bytes (negative: freed); raise :class:`OverBudget` past the limit."""
        self.size += size
        self._check()

    def _check(self) -> None:
        if self.size > self.limit:
            raise OverBudget(self.size, self.limit)
