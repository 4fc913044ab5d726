"""The ``OTEL_*`` env vars for app containers: where to send telemetry, and what it is.

Contract: the user's env always wins. A variable the container already sets is left as it
is, with one exception by design: an existing literal ``OTEL_RESOURCE_ATTRIBUTES`` keeps all
its keys and gets ours merged in after them. A ``service.name`` in it also means no
``OTEL_SERVICE_NAME`` is added (SDKs prefer that variable over the attribute).

The endpoint is the sidecar on ``localhost``, or for an env-only pod the node's collector or
a URL (:mod:`webhook.core.endpoint`); the attributes beyond the ``k8s.*`` names follow
:mod:`webhook.core.resource`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core import names
from webhook.core.bounds import clip
from webhook.core.endpoint import NODE_IP_ENV, NODE_IP_FIELD, AppEndpoint
from webhook.core.overrides import Notice
from webhook.core.resource import NO_RESOURCE, PodResource, container_attributes, format_value
from webhook.core.settings import InjectionSettings, OtlpProtocol
from webhook.core.workload import Workload

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
SERVICE_NAME = "OTEL_SERVICE_NAME"
RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
PROPAGATORS = "OTEL_PROPAGATORS"

_ENDPOINT_FOR = {
    "grpc": f"http://localhost:{names.OTLP_GRPC_PORT}",
    "http/protobuf": f"http://localhost:{names.OTLP_HTTP_PORT}",
    "http/json": f"http://localhost:{names.OTLP_HTTP_PORT}",
}


@dataclass(frozen=True)
class PodIdentity:
    """What every container in the pod shares for its resource attributes."""

    namespace: str
    workload: Workload | None
    service_name: str | None  # from the annotation or a label; None: per-container fallback
    resource: PodResource = NO_RESOURCE  # the conventions' attributes (webhook.core.resource)


def service_name_for(identity: PodIdentity, container_name: str) -> str:
    """Annotation or label (already in ``identity``), else the workload, else the container."""
    if identity.service_name:
        return identity.service_name
    if identity.workload is not None:
        return identity.workload.service_name
    return container_name


def pod_service_name(annotation: str | None, labels: Mapping[str, Any]) -> str | None:
    """The pod-wide service name, if the annotation or a well-known label gives one."""
    for candidate in (annotation, labels.get("app.kubernetes.io/name"), labels.get("app")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def inject_env(
    container: dict[str, Any],
    identity: PodIdentity,
    settings: InjectionSettings,
    *,
    name: str | None = None,
    endpoint: AppEndpoint | None = None,
) -> tuple[list[str], list[Notice]]:
    """Add our env vars to ``container`` in place (the caller passes a deep copy).

    Returns the names added (or merged) and any notices. New variables are appended after
    the user's, so the user's ``$(VAR)`` references keep their meaning; the downward-API
    helpers are placed before anything that references them, because the kubelet only
    expands references to variables defined earlier in the list.

    ``name`` is the container's name as copied into the values (the caller caps it);
    by default the container's own. ``endpoint`` is where an env-only pod exports; ``None``
    for the sidecar on ``localhost``.
    """
    container_name = name if name is not None else str(container.get("name") or "")
    env: list[Any] = container.get("env") or []
    existing = {e.get("name"): i for i, e in enumerate(env) if isinstance(e, Mapping)}
    added: list[str] = []
    warnings: list[Notice] = []
    new: list[dict[str, Any]] = []

    def add(name: str, value: str) -> None:
        if name not in existing:
            new.append({"name": name, "value": value})
            added.append(name)

    url, protocol = _endpoint_and_protocol(env, existing, settings.app_otlp_protocol, endpoint)
    if url:
        if endpoint is not None and endpoint.needs_node_ip and NODE_IP_ENV not in existing:
            # Before the endpoint that references it: the kubelet expands $(VAR) only from
            # variables defined earlier. A user's own OTEL_NODE_IP is earlier still (ours
            # are appended after the user's), and then theirs is the one used.
            field_ref = {"fieldRef": {"apiVersion": "v1", "fieldPath": NODE_IP_FIELD}}
            new.append({"name": NODE_IP_ENV, "valueFrom": field_ref})
            added.append(NODE_IP_ENV)
        add(ENDPOINT, url)
    if protocol:
        add(PROTOCOL, protocol)
    position = existing.get(RESOURCE_ATTRIBUTES)
    if not (position is not None and _has_service_name(env[position])):
        add(SERVICE_NAME, service_name_for(identity, container_name))
    add(PROPAGATORS, settings.propagators)

    ours = _resource_attributes(identity, container_name, container.get("image"))
    if position is None:
        helpers = _helpers_for(ours, existing)
        new[0:0] = helpers
        add(RESOURCE_ATTRIBUTES, _format_attributes(ours))
    else:
        current = env[position]
        if isinstance(current.get("value"), str) and "valueFrom" not in current:
            missing = _missing_attributes(current["value"], ours)
            late = _helpers_defined_after(env, position)
            if late:
                # The user defines a helper after their OTEL_RESOURCE_ATTRIBUTES: a $(...)
                # reference to it there is never expanded, so its attribute is left out.
                late_keys = {key for var, _, key in names.APP_DOWNWARD_ENV if var in late}
                late_keys |= {k for k, v in missing if any(f"$({var})" in v for var in late)}
                missing = [(k, v) for k, v in missing if k not in late_keys]
                warnings.append(
                    Notice(
                        "attributes-helper-order",
                        f"container {clip(container_name)}: {', '.join(sorted(late))} is defined after "
                        f"{RESOURCE_ATTRIBUTES}, where the kubelet cannot expand it; "
                        f"{', '.join(sorted(late_keys))} left out",
                    )
                )
            helpers = _helpers_for(missing, existing)
            if missing:
                env[position] = {**current, "value": _append_attributes(current["value"], missing)}
                added.append(RESOURCE_ATTRIBUTES)
            # Helpers go right before the user's variable so its $(...) references resolve.
            env[position:position] = helpers
        else:
            warnings.append(
                Notice(
                    "attributes-from-valuefrom",
                    f"container {clip(container_name)}: {RESOURCE_ATTRIBUTES} "
                    f"{'comes from valueFrom' if 'valueFrom' in current else 'has no value'}; "
                    "left as it is, without the k8s.* attributes",
                )
            )
            helpers = []
    added[0:0] = [h["name"] for h in helpers]
    if new or helpers:
        container["env"] = env + new
    return added, warnings


def _endpoint_and_protocol(
    env: Sequence[Any], existing: Mapping[Any, int], default: OtlpProtocol, target: AppEndpoint | None
) -> tuple[str | None, str | None]:
    """Endpoint and protocol to add, kept consistent with whatever the user already set.

    If the user set only the protocol, our endpoint follows it (a URL endpoint is used as it
    is; an unknown protocol gets no endpoint). If the user set only the endpoint, we add no
    protocol: we cannot know which one their endpoint speaks.
    """
    has_endpoint, has_protocol = ENDPOINT in existing, PROTOCOL in existing
    if has_endpoint:
        return None, None
    if has_protocol:
        user_protocol = env[existing[PROTOCOL]].get("value")
        if not isinstance(user_protocol, str) or user_protocol not in _ENDPOINT_FOR:
            return (target.url or None) if target is not None else None, None
        return (target.url_for(user_protocol) if target is not None else _ENDPOINT_FOR[user_protocol]), None
    return (target.url_for(default) if target is not None else _ENDPOINT_FOR[default]), default


def _has_service_name(variable: Mapping[str, Any]) -> bool:
    """Whether the user's literal ``OTEL_RESOURCE_ATTRIBUTES`` sets ``service.name``."""
    value = variable.get("value")
    return isinstance(value, str) and "valueFrom" not in variable and "service.name" in _keys(value)


def _resource_attributes(identity: PodIdentity, container_name: str, image: object) -> list[tuple[str, str]]:
    attrs = [("k8s.namespace.name", identity.namespace)]
    attrs += [(key, f"$({var})") for var, _, key in names.APP_DOWNWARD_ENV]
    if identity.workload is not None:
        attrs += identity.workload.resource_attributes()
    attrs.append(("k8s.container.name", container_name))
    return container_attributes(
        identity.resource, attrs, namespace=identity.namespace, container_name=container_name, image=image
    )


def _format_attributes(attrs: Sequence[tuple[str, str]]) -> str:
    # Values are percent-encoded as the OTel spec asks (webhook.core.resource.format_value).
    return ",".join(f"{key}={format_value(value)}" for key, value in attrs)


def _keys(current: str) -> set[str]:
    return {part.split("=", 1)[0].strip() for part in current.split(",") if "=" in part}


def _missing_attributes(current: str, ours: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    present = _keys(current)
    return [(k, v) for k, v in ours if k not in present]


def _append_attributes(current: str, missing: Sequence[tuple[str, str]]) -> str:
    separator = "," if current.strip() and not current.rstrip().endswith(",") else ""
    return current + separator + _format_attributes(missing)


def _helpers_defined_after(env: Sequence[Any], position: int) -> set[str]:
    """Our helper variables that the user defines only after ``position`` (first definitions)."""
    first: dict[str, int] = {}
    helper_names = {var for var, _, _ in names.APP_DOWNWARD_ENV}
    for index, item in enumerate(env):
        var = item.get("name") if isinstance(item, Mapping) else None
        if var in helper_names:
            first.setdefault(var, index)
    return {var for var, index in first.items() if index > position}


def _helpers_for(attrs: Sequence[tuple[str, str]], existing: Mapping[Any, int]) -> list[dict[str, Any]]:
    """Downward-API helper vars that the values in ``attrs`` reference (``k8s.pod.name``,
    and ``service.instance.id`` which holds the pod name too)."""
    values = "".join(value for _, value in attrs)  # user values are encoded: no "$(" of theirs
    return [
        {"name": var, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
        for var, path, _ in names.APP_DOWNWARD_ENV
        if f"$({var})" in values and var not in existing
    ]
