"""Whether a pod gets the sidecar: the skip rules, each with a stable reason code.

Contract: :func:`decide` is pure and total. It never raises on odd input; a pod shape it
cannot understand is simply injected or skipped with a reason, never an error.
The reason codes are metric label values and span attributes, so they are kept short,
stable and few.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import names
from webhook.core.settings import InjectionSettings


class Reason(enum.StrEnum):
    """Why a pod was or was not injected."""

    INJECTED = "injected"
    OPTED_OUT = "opted-out"
    ALREADY_INJECTED = "already-injected"
    NOT_CREATE = "not-create"
    MIRROR_POD = "mirror-pod"
    HOST_NETWORK = "host-network"
    PORT_CONFLICT = "port-conflict"
    NAME_CONFLICT = "name-conflict"
    SYSTEM_NAMESPACE = "system-namespace"


@dataclass(frozen=True)
class Decision:
    """``inject`` is the verdict; ``message`` is the one line a user sees in kubectl."""

    inject: bool
    reason: Reason
    message: str


INJECT = Decision(True, Reason.INJECTED, "otel-injector: sidecar injected")


def decide(
    pod: Mapping[str, Any],
    *,
    namespace: str,
    operation: str,
    settings: InjectionSettings,
) -> Decision:
    """Apply the skip rules in order; the first that holds wins. Otherwise inject."""
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    labels = _mapping(metadata.get("labels"))
    annotations = _mapping(metadata.get("annotations"))

    def skip(reason: Reason, why: str) -> Decision:
        return Decision(False, reason, f"otel-injector: sidecar not injected: {why}")

    if operation != "CREATE":
        return skip(Reason.NOT_CREATE, f"operation is {operation}, only CREATE is injected")
    if labels.get(names.TRACING_LABEL) == names.TRACING_DISABLED:
        return skip(Reason.OPTED_OUT, f"pod has the label {names.TRACING_LABEL}={names.TRACING_DISABLED}")
    if names.STATUS_ANNOTATION in annotations or any(
        c.get("name") == names.CONTAINER_NAME for c in _all_containers(spec)
    ):
        return skip(Reason.ALREADY_INJECTED, f"pod already has the {names.CONTAINER_NAME} sidecar")
    if namespace in settings.excluded_namespaces:
        return skip(Reason.SYSTEM_NAMESPACE, f"namespace {namespace} is a system namespace")
    if names.MIRROR_POD_ANNOTATION in annotations:
        return skip(Reason.MIRROR_POD, "pod is a mirror pod (static pods cannot be changed)")
    if spec.get("hostNetwork") is True:
        return skip(
            Reason.HOST_NETWORK,
            f"pod uses hostNetwork, so the collector's port {names.OTLP_GRPC_PORT} would collide on the node",
        )
    for container in _all_containers(spec):
        for port in _mappings(container.get("ports")):
            if port.get("containerPort") in names.COLLECTOR_PORTS:
                return skip(
                    Reason.PORT_CONFLICT,
                    f"container {container.get('name')} already uses port {port['containerPort']}, "
                    "which the collector needs",
                )
    if any(v.get("name") == names.VOLUME_NAME for v in _mappings(spec.get("volumes"))):
        return skip(Reason.NAME_CONFLICT, f"pod already has a volume named {names.VOLUME_NAME}")
    return INJECT


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


def _all_containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from _mappings(spec.get("initContainers"))
    yield from _mappings(spec.get("containers"))
