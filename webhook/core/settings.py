"""The frozen settings of the pure injection: :class:`InjectionSettings`.

They hold only what the mutation needs. Reading them from flags, environment and files is
:mod:`webhook.config.settings`' job, not this module's: nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from webhook.core import names
from webhook.core.endpoint import parse_endpoint
from webhook.core.quantity import QuantityError, parse_quantity

# The collector version the local test bench builds and validates the default config
# against; the default image is the official core distribution at the same version.
COLLECTOR_VERSION = "0.162.0"
DEFAULT_IMAGE = f"otel/opentelemetry-collector:{COLLECTOR_VERSION}"

SidecarMode = Literal["native", "container"]
SIDECAR_MODES: tuple[SidecarMode, ...] = ("native", "container")
#: What a pod got: a sidecar in one of the two modes, or only the env (``sidecar-mode: none``).
InjectionMode = Literal["native", "container", "none"]
ENV_ONLY: InjectionMode = "none"
OtlpProtocol = Literal["grpc", "http/protobuf"]
OTLP_PROTOCOLS: tuple[OtlpProtocol, ...] = ("grpc", "http/protobuf")

DEFAULT_NAMESPACE = "otel-injector"
BASE_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


class SettingsError(ValueError):
    """A setting has a value the injector cannot run with. The message names it."""


@dataclass(frozen=True)
class InjectionSettings:
    """Everything the pure injection needs. Immutable, so one instance is shared by all
    requests; a config change produces a new instance (``dataclasses.replace``).
    """

    sidecar_image: str = DEFAULT_IMAGE
    sidecar_image_pull_policy: str = "IfNotPresent"
    sidecar_mode: SidecarMode = "native"
    sidecar_cpu_request: str = "50m"
    sidecar_cpu_limit: str = "500m"
    sidecar_memory_request: str = "64Mi"
    sidecar_memory_limit: str = "256Mi"
    # Percent of the memory limit given to the Go runtime as GOMEMLIMIT, leaving headroom
    # for non-heap memory so the collector degrades before the kernel OOM-kills it.
    gomemlimit_percent: int = 80
    config_map: str = names.CONFIGMAP_NAME
    # Hash of the collector config the pods get; recorded in the status annotation so
    # ``otel-injector stale`` can find pods injected before a config change.
    config_hash: str = ""
    app_otlp_protocol: OtlpProtocol = "http/protobuf"
    propagators: str = "tracecontext,baggage"
    namespace: str = DEFAULT_NAMESPACE
    system_namespaces: tuple[str, ...] = BASE_SYSTEM_NAMESPACES
    # Where env-only pods (sidecar-mode none) export when their otel-injector.io/endpoint
    # annotation does not say: "node" or an http(s) URL; empty means they must say.
    env_only_endpoint: str = ""

    def __post_init__(self) -> None:
        check_choice("sidecar_mode", self.sidecar_mode, SIDECAR_MODES)
        check_choice("app_otlp_protocol", self.app_otlp_protocol, OTLP_PROTOCOLS)
        check_choice(
            "sidecar_image_pull_policy",
            self.sidecar_image_pull_policy,
            ("Always", "IfNotPresent", "Never"),
        )
        for name in (
            "sidecar_cpu_request",
            "sidecar_cpu_limit",
            "sidecar_memory_request",
            "sidecar_memory_limit",
        ):
            try:
                parse_quantity(getattr(self, name))
            except QuantityError as err:
                raise SettingsError(f"{name}: {err}") from None
        if not 10 <= self.gomemlimit_percent <= 100:
            raise SettingsError("gomemlimit_percent must be between 10 and 100")
        if not self.sidecar_image.strip():
            raise SettingsError("sidecar_image must not be empty")
        if self.env_only_endpoint:
            endpoint, why = parse_endpoint(self.env_only_endpoint)
            if endpoint is None:
                raise SettingsError(f"env_only_endpoint {self.env_only_endpoint[:80]!r} {why}")

    @property
    def excluded_namespaces(self) -> frozenset[str]:
        """System namespaces plus the injector's own: pods there are never injected."""
        return frozenset((*self.system_namespaces, self.namespace))


def config_hash(data: bytes) -> str:
    """A short, stable fingerprint of a collector config, for the status annotation."""
    return hashlib.sha256(data).hexdigest()[:16]


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`SettingsError` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
