"""Per-pod overrides from ``otel-injector.io/*`` annotations, validated.

Contract: :func:`read_overrides` never raises for bad user input. A bad value falls back to
the default and yields a warning that names the annotation, so a pod is never denied
because of a typo. Each annotation sets exactly one typed field: annotation text is never
pasted into a template, so it cannot add fields to the pod (the class of bug Istio fixed in
2026) and cannot reach the sidecar's securityContext.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from webhook.core import names
from webhook.core.bounds import MAX_LABEL_LENGTH, clip
from webhook.core.endpoint import AppEndpoint, parse_endpoint, redacted
from webhook.core.quantity import QuantityError, parse_quantity
from webhook.core.settings import ENV_ONLY, SIDECAR_MODES, InjectionSettings, SidecarMode

SERVICE_NAME = names.ANNOTATION_PREFIX + "service-name"
SIDECAR_MODE = names.ANNOTATION_PREFIX + "sidecar-mode"
CPU_REQUEST = names.ANNOTATION_PREFIX + "cpu-request"
CPU_LIMIT = names.ANNOTATION_PREFIX + "cpu-limit"
MEMORY_REQUEST = names.ANNOTATION_PREFIX + "memory-request"
MEMORY_LIMIT = names.ANNOTATION_PREFIX + "memory-limit"
IMAGE = names.ANNOTATION_PREFIX + "image"
CONFIG = names.ANNOTATION_PREFIX + "config"
CONTAINERS = names.ANNOTATION_PREFIX + "containers"
ENDPOINT = names.ANNOTATION_PREFIX + "endpoint"

OVERRIDE_ANNOTATIONS = (
    SERVICE_NAME,
    SIDECAR_MODE,
    CPU_REQUEST,
    CPU_LIMIT,
    MEMORY_REQUEST,
    MEMORY_LIMIT,
    IMAGE,
    CONFIG,
    CONTAINERS,
    ENDPOINT,
)
# Annotations under our prefix that are not overrides but are still ours.
_KNOWN_OTHER = (names.STATUS_ANNOTATION, names.MANAGED_ANNOTATION)
_KNOWN_ANNOTATIONS = frozenset(OVERRIDE_ANNOTATIONS + _KNOWN_OTHER)
_KNOWN = ", ".join(a.removeprefix(names.ANNOTATION_PREFIX) for a in OVERRIDE_ANNOTATIONS)

# An OCI image reference: optional registry host[:port]/, lower-case path components,
# optional tag, optional sha256 digest. Deliberately strict: whitespace, quotes and
# newlines never pass.
_IMAGE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
# A ConfigMap name is a DNS-1123 subdomain.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$")
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")

# The smallest resources a collector sidecar starts with. Below them the sidecar cannot
# come up, and in native mode its startup probe holds the app back, so a typo like
# ``memory-limit: 1n`` (accepted by the grammar, like ``0`` once was) would block the pod.
# The collector's core distribution idles at about 25 MiB RSS and needs some tens of
# millicores to pass its startup probe within the 60 s it is given.
RESOURCE_FLOORS = {
    CPU_REQUEST: ("1m", parse_quantity("1m")),
    CPU_LIMIT: ("10m", parse_quantity("10m")),
    MEMORY_REQUEST: ("1Mi", parse_quantity("1Mi")),
    MEMORY_LIMIT: ("32Mi", parse_quantity("32Mi")),
}
# Names listed in one warning at most; the rest are counted.
_LISTED = 5


@dataclass(frozen=True)
class Notice:
    """A fallback the injector took: ``reason`` is a short code for metrics and spans,
    ``message`` the line a user reads in kubectl's warnings.
    """

    reason: str
    message: str


@dataclass(frozen=True)
class PodOverrides:
    """The effective per-pod values after validation; defaults where nothing valid was set.

    ``containers`` is ``None`` when every app container gets the env vars. ``endpoint``
    is set for an env-only pod (``sidecar-mode: none`` with a usable endpoint): no
    sidecar, and the app exports there; ``None`` means a sidecar in ``sidecar_mode``.
    """

    service_name: str | None
    sidecar_mode: SidecarMode
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    image: str
    config_map: str
    containers: tuple[str, ...] | None
    endpoint: AppEndpoint | None = None


def read_overrides(
    annotations: Mapping[str, str],
    settings: InjectionSettings,
    app_containers: Sequence[str],
) -> tuple[PodOverrides, list[Notice]]:
    """Validate the pod's override annotations against ``settings``.

    Returns the effective overrides and a notice per rejected or unknown annotation.
    """
    warnings: list[Notice] = []

    def fallback(key: str, value: str, why: str, default: object) -> None:
        shown = value if len(value) <= 64 else value[:61] + "..."
        short = key.removeprefix(names.ANNOTATION_PREFIX)
        warnings.append(Notice(f"invalid-{short}", f"{key}: {shown!r} {why}; using the default {default}"))

    def text(key: str) -> str | None:
        value = annotations.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Unquoted YAML numbers (cpu-limit: 1) in manifests given to ``inject``.
            return str(value)
        return value.strip() if isinstance(value, str) else None

    service_name = text(SERVICE_NAME)
    if service_name is not None and not (0 < len(service_name) <= 255 and _PRINTABLE.match(service_name)):
        fallback(SERVICE_NAME, service_name, "is not a usable service name", "derived from the pod")
        service_name = None

    mode: SidecarMode = settings.sidecar_mode
    raw_mode = text(SIDECAR_MODE)
    if raw_mode is not None:
        if raw_mode in SIDECAR_MODES:
            mode = "native" if raw_mode == "native" else "container"
        elif raw_mode != ENV_ONLY:
            fallback(SIDECAR_MODE, raw_mode, "is not native, container or none", mode)
    endpoint, endpoint_notice = _env_only_endpoint(raw_mode == ENV_ONLY, text(ENDPOINT), settings, mode)
    if endpoint_notice is not None:
        warnings.append(endpoint_notice)

    quantities: dict[str, str] = {}
    for key, default in (
        (CPU_REQUEST, settings.sidecar_cpu_request),
        (CPU_LIMIT, settings.sidecar_cpu_limit),
        (MEMORY_REQUEST, settings.sidecar_memory_request),
        (MEMORY_LIMIT, settings.sidecar_memory_limit),
    ):
        value = text(key)
        quantities[key] = default
        if value is None:
            continue
        try:
            floor_text, floor = RESOURCE_FLOORS[key]
            if parse_quantity(value) < floor:
                raise QuantityError(f"is below {floor_text}, the least a collector sidecar starts with")
            quantities[key] = value
        except QuantityError as err:
            fallback(key, value, _why(err, value), default)

    for request_key, limit_key, request_default, limit_default in (
        (CPU_REQUEST, CPU_LIMIT, settings.sidecar_cpu_request, settings.sidecar_cpu_limit),
        (MEMORY_REQUEST, MEMORY_LIMIT, settings.sidecar_memory_request, settings.sidecar_memory_limit),
    ):
        if parse_quantity(quantities[request_key]) > parse_quantity(quantities[limit_key]):
            # The apiserver rejects request > limit, and a pod must never be lost to a typo.
            warnings.append(
                Notice(
                    f"invalid-{request_key.removeprefix(names.ANNOTATION_PREFIX)}",
                    f"{request_key}: {quantities[request_key]} exceeds the limit "
                    f"{quantities[limit_key]}; using the defaults {request_default} and {limit_default}",
                )
            )
            quantities[request_key], quantities[limit_key] = request_default, limit_default

    image = settings.sidecar_image
    raw_image = text(IMAGE)
    if raw_image is not None:
        if len(raw_image) <= 512 and _IMAGE.match(raw_image):
            image = raw_image
        else:
            fallback(IMAGE, raw_image, "is not an image reference", image)

    config_map = settings.config_map
    raw_config = text(CONFIG)
    if raw_config is not None:
        if len(raw_config) <= 253 and _DNS_SUBDOMAIN.match(raw_config):
            config_map = raw_config
        else:
            fallback(CONFIG, raw_config, "is not a ConfigMap name", config_map)

    containers: tuple[str, ...] | None = None
    raw_containers = text(CONTAINERS)
    if raw_containers is not None:
        wanted = [c.strip() for c in raw_containers.split(",") if c.strip()]
        # A set: the annotation and the pod may both list tens of thousands of names, and
        # a list here made the check quadratic (seconds per pod, issue 9).
        known_names = set(app_containers)
        unknown = [c for c in wanted if c not in known_names]
        found = tuple(dict.fromkeys(c for c in wanted if c in known_names))
        if not found:
            fallback(CONTAINERS, raw_containers, "names no app container", "all app containers")
        else:
            containers = found
            if unknown:
                warnings.append(
                    Notice("unknown-container", f"{CONTAINERS}: no app container named {_listed(unknown)}; ignored")
                )

    unknown_keys = sorted(
        key for key in annotations if key.startswith(names.ANNOTATION_PREFIX) and key not in _KNOWN_ANNOTATIONS
    )
    for key in unknown_keys[:_LISTED]:
        warnings.append(Notice("unknown-annotation", f"{clip(key)}: unknown annotation, ignored (known: {_KNOWN})"))
    if len(unknown_keys) > _LISTED:
        # One line for the rest: a notice each would be a message each, for any number of keys.
        warnings.append(
            Notice(
                "unknown-annotation",
                f"{len(unknown_keys) - _LISTED:,} more unknown {names.ANNOTATION_PREFIX} annotations, ignored",
            )
        )

    overrides = PodOverrides(
        service_name=service_name,
        sidecar_mode=mode,
        cpu_request=quantities[CPU_REQUEST],
        cpu_limit=quantities[CPU_LIMIT],
        memory_request=quantities[MEMORY_REQUEST],
        memory_limit=quantities[MEMORY_LIMIT],
        image=image,
        config_map=config_map,
        containers=containers,
        endpoint=endpoint,
    )
    return overrides, warnings


def _env_only_endpoint(
    env_only: bool, raw: str | None, settings: InjectionSettings, mode: SidecarMode
) -> tuple[AppEndpoint | None, Notice | None]:
    """The endpoint of an env-only pod, or ``None`` (a sidecar) with a notice saying why.

    The annotation wins over the ``env_only_endpoint`` setting. A bad annotation is not
    replaced by the setting: the user asked for that endpoint, and a sidecar still traces
    the pod while they fix it."""
    if not env_only:
        if raw is None:
            return None, None
        return None, Notice("unused-endpoint", f"{ENDPOINT} is used only with {SIDECAR_MODE}: none; ignored")
    value = raw if raw is not None else settings.env_only_endpoint
    if not value:
        why = f"{SIDECAR_MODE}: none needs {ENDPOINT} (node or an http(s) URL) or a default (injection.endpoint)"
        return None, Notice("missing-endpoint", f"{why}; using a {mode} sidecar")
    endpoint, problem = parse_endpoint(value)
    if endpoint is None:
        source = ENDPOINT if raw is not None else "the default endpoint"
        return None, Notice("invalid-endpoint", f"{source}: {redacted(value)!r} {problem}; using a {mode} sidecar")
    return endpoint, None


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(clip(item, MAX_LABEL_LENGTH) for item in items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown} and {len(items) - _LISTED:,} more"


def _why(err: QuantityError, value: str) -> str:
    # QuantityError messages start with the quoted value; the fallback line quotes it already.
    return str(err).removeprefix(f"{value!r} ")
