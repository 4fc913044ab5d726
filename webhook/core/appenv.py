"""The ``OTEL_*`` env vars for app containers: where to send telemetry, and what it is.

Contract: the user's env always wins. A variable the container already sets is left as it
is, with one exception by design: an existing literal ``OTEL_RESOURCE_ATTRIBUTES`` keeps all
its keys and gets ours merged in after them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from webhook.core import names
from webhook.core.bounds import clip
from webhook.core.overrides import Notice
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
    env_from: Mapping[str, str] | None = None,
) -> tuple[list[str], list[Notice]]:
    """Add our env vars to ``container`` in place (the caller passes a deep copy).

    Returns the names added (or merged) and any notices. New variables are appended after
    the user's, so the user's ``$(VAR)`` references keep their meaning; the downward-API
    helpers are placed before anything that references them, because the kubelet only
    expands references to variables defined earlier in the list.

    ``name`` is the container's name as copied into the values (the caller caps it);
    by default the container's own.

    ``env_from`` is what the container's ``envFrom`` ConfigMaps set
    (:func:`webhook.core.envfrom.user_env`); those values win like the user's own ``env``
    (issue 12 §7), which at run time overrides ``envFrom`` anyway:

    * a variable set there is not added (service name, propagators, endpoint, protocol,
      the downward-API helpers); an endpoint set there means no protocol is added, and a
      protocol set there makes our endpoint follow it, as for ``env``;
    * ``OTEL_RESOURCE_ATTRIBUTES`` set there gets an explicit entry
      ``<our missing keys>,$(OTEL_RESOURCE_ATTRIBUTES)``: the kubelet expands the reference
      to the ``envFrom`` value, so the ConfigMap's attributes stay live and come last,
      where the SDKs let the last duplicate win: the user's keys win even if the ConfigMap
      later gains one of ours. With none of ours missing, nothing is added.
    """
    container_name = name if name is not None else str(container.get("name") or "")
    env: list[Any] = container.get("env") or []
    existing = {e.get("name"): i for i, e in enumerate(env) if isinstance(e, Mapping)}
    from_env_from = env_from or {}
    # Names the user defines either way; a dict only when envFrom adds any (the common pod has none).
    defined: Mapping[Any, int] = existing if not from_env_from else {**existing, **dict.fromkeys(from_env_from, -1)}
    added: list[str] = []
    warnings: list[Notice] = []
    new: list[dict[str, Any]] = []

    def add(name: str, value: str) -> None:
        if name not in defined:
            new.append({"name": name, "value": value})
            added.append(name)

    endpoint, protocol = _endpoint_and_protocol(env, existing, settings.app_otlp_protocol, from_env_from)
    if endpoint:
        add(ENDPOINT, endpoint)
    if protocol:
        add(PROTOCOL, protocol)
    add(SERVICE_NAME, service_name_for(identity, container_name))
    add(PROPAGATORS, settings.propagators)

    ours = _resource_attributes(identity, container_name)
    position = existing.get(RESOURCE_ATTRIBUTES)
    if position is None and RESOURCE_ATTRIBUTES in from_env_from:
        missing = _missing_attributes(from_env_from[RESOURCE_ATTRIBUTES], ours)
        helpers = _helpers_for(missing, defined)
        new[0:0] = helpers
        if missing:
            value = f"{_format_attributes(missing)},$({RESOURCE_ATTRIBUTES})"
            new.append({"name": RESOURCE_ATTRIBUTES, "value": value})
            added.append(RESOURCE_ATTRIBUTES)
    elif position is None:
        helpers = _helpers_for(ours, defined)
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
    env: Sequence[Any], existing: Mapping[Any, int], default: OtlpProtocol, env_from: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """Endpoint and protocol to add, kept consistent with whatever the user already set.

    If the user set only the protocol, our endpoint follows it. If the user set only the
    endpoint, we add no protocol: we cannot know which one their endpoint speaks.
    """
    from_env_from = env_from or {}
    has_endpoint = ENDPOINT in existing or ENDPOINT in from_env_from
    has_protocol = PROTOCOL in existing or PROTOCOL in from_env_from
    if has_endpoint:
        return None, None
    if has_protocol:
        # The explicit env overrides envFrom at run time, so its value is the one in force.
        user_protocol = env[existing[PROTOCOL]].get("value") if PROTOCOL in existing else from_env_from[PROTOCOL]
        endpoint = _ENDPOINT_FOR.get(user_protocol) if isinstance(user_protocol, str) else None
        return endpoint, None
    return _ENDPOINT_FOR[default], default


def _resource_attributes(identity: PodIdentity, container_name: str) -> list[tuple[str, str]]:
    attrs = [("k8s.namespace.name", identity.namespace)]
    attrs += [(key, f"$({var})") for var, _, key in names.APP_DOWNWARD_ENV]
    if identity.workload is not None:
        attrs += identity.workload.resource_attributes()
    attrs.append(("k8s.container.name", container_name))
    return attrs


def _format_attributes(attrs: Sequence[tuple[str, str]]) -> str:
    # Values are percent-encoded as the OTel spec asks; "$()" stays literal for the kubelet.
    return ",".join(f"{key}={quote(value, safe='$()')}" for key, value in attrs)


def _missing_attributes(current: str, ours: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    present = {part.split("=", 1)[0].strip() for part in current.split(",") if "=" in part}
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
    """Downward-API helper vars for the pod-level attributes in ``attrs`` that need one."""
    keys = {key for key, _ in attrs}
    return [
        {"name": var, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
        for var, path, key in names.APP_DOWNWARD_ENV
        if key in keys and var not in existing
    ]
