"""Settings, read once into frozen objects.

Precedence, highest first: command-line flag, environment variable, YAML config file,
built-in default. Every setting has an environment variable named ``OTEL_INJECTOR_<FIELD>``
(upper-cased), and the YAML file uses the field names as keys. Unknown keys and bad values
are errors at start-up, not surprises at admission time. docs/settings.md lists them all
(generated from these dataclasses by docs/render_settings.py, checked by
tests/docs/test_render_settings.py).

:class:`Settings` holds the server's own fields and nested, frozen groups:
:class:`~webhook.core.settings.InjectionSettings` (only what the pure mutation needs),
:class:`~webhook.config.timings.ClusterTimings` and
:class:`~webhook.config.timings.ServingTimings`. A group's fields are set by their own flat
names, like the top-level ones; field names are unique across groups.

Values are converted by the field's real type (``typing.get_type_hints``): ``bool``,
``int``, ``float``, ``str``, a ``Literal`` of strings, or ``tuple[str, ...]`` (a
comma-separated string in the environment).
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from webhook.config.timings import ClusterTimings, ServingTimings
from webhook.core.settings import (
    DEFAULT_NAMESPACE,
    InjectionSettings,
    SettingsError,
    check_choice,
    config_hash,
)

CertMode = Literal["file", "self-managed", "cert-manager", "secret"]
CERT_MODES: tuple[CertMode, ...] = ("file", "self-managed", "cert-manager", "secret")

ENV_PREFIX = "OTEL_INJECTOR_"


@dataclass(frozen=True)
class Settings:
    """The server's settings, with the injection settings nested inside."""

    port: int = 8443
    # All interfaces: in a cluster the apiserver reaches the webhook through its Service.
    bind_address: str = "0.0.0.0"  # noqa: S104
    tls_cert: str = ""
    tls_key: str = ""
    workers: int = 1
    # Twice the apiserver's 3 MB object limit, as Istio does: no legitimate review is larger.
    max_body_bytes: int = 6 * 1024 * 1024
    # HTTP limits (webhook.http.limits says why these values): the request line and headers
    # in bytes, the number of headers, and the time a client has for its headers (from the
    # request's first byte, or the connection's start) and then for its body. Headers and
    # body together stay within 30 s, the longest webhook timeout the apiserver accepts.
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 20.0
    log_level: str = "INFO"
    # File whose bytes are the collector config; only its hash is used by the webhook.
    collector_config_file: str = ""
    # --- In-cluster operation (see webhook.cluster.controllers) ---
    # self-managed: the process keeps a CA + serving cert in a Secret, writes them to
    # tls_cert/tls_key and patches the caBundle. cert-manager, secret, file: the cert files
    # are provided (a mounted Secret); the server only reloads them when they change.
    cert_mode: CertMode = "file"
    cert_secret: str = "otel-injector-tls"  # noqa: S105 - a Secret name, not a secret
    webhook_config_name: str = "otel-injector"
    # The Service in front of the webhook; the serving cert's SANs are <service>.<ns>.svc.
    service_name: str = "otel-injector"
    # Copy the collector config into every traced namespace and keep it in sync.
    reconcile: bool = False
    # The source collector config: a ConfigMap in the injector's namespace, key config.yaml.
    collector_source: str = "otel-injector-collector-config"
    leader_election: bool = False
    lease_name: str = "otel-injector-leader"
    # Empty: in-cluster config, else $KUBECONFIG or ~/.kube/config.
    kubeconfig: str = ""
    # --- Pods missing the sidecar, and rollouts (webhook.cluster.missing, .restarts) ---
    # With the reconciler: watch every pod to find the ones the rules would inject that run
    # without the sidecar (the gauge otel_injector_pods_missing_sidecar, SidecarMissing
    # Events) and roll workloads annotated otel-injector.io/auto-restart when out of date.
    missing_sidecars: bool = True
    # Roll the Deployment, StatefulSet or DaemonSet of a pod missing the sidecar.
    repair_missing_sidecars: bool = False
    # Cluster-wide cap on the rollouts the leader starts (repairs and auto-restarts).
    max_restarts_per_minute: int = 2
    injection: InjectionSettings = field(default_factory=InjectionSettings)
    # --- Timings (webhook.config.timings): controllers, then the serving process ---
    cluster: ClusterTimings = field(default_factory=ClusterTimings)
    serving: ServingTimings = field(default_factory=ServingTimings)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1-65535, not {self.port}")
        if self.workers < 1:
            raise SettingsError("workers must be at least 1")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024")
        if self.max_header_bytes < 1024 or self.max_headers < 8:
            raise SettingsError("max_header_bytes must be at least 1024 and max_headers at least 8")
        if not 0 < self.header_timeout_seconds <= 60 or not 0 < self.body_timeout_seconds <= 60:
            raise SettingsError("header_timeout_seconds and body_timeout_seconds must be within (0, 60]")
        check_choice("cert_mode", self.cert_mode, CERT_MODES)
        if not isinstance(self.max_restarts_per_minute, int) or self.max_restarts_per_minute < 1:
            raise SettingsError(f"max_restarts_per_minute must be at least 1, not {self.max_restarts_per_minute!r}")

    @property
    def needs_kubernetes(self) -> bool:
        """Whether the process talks to the Kubernetes API (reconciler or cert bootstrap)."""
        return self.reconcile or self.cert_mode == "self-managed"


_HINTS = typing.get_type_hints(Settings)
#: The fields of :class:`Settings` that are nested dataclasses (injection, cluster,
#: serving), and their classes.
GROUPS: dict[str, type[Any]] = {
    f.name: _HINTS[f.name] for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(_HINTS[f.name])
}
#: Setting name -> (its group, or "" for a top-level field; the field's type).
_FIELDS: dict[str, tuple[str, Any]] = {
    f.name: ("", _HINTS[f.name]) for f in dataclasses.fields(Settings) if f.name not in GROUPS
}
for _group, _cls in GROUPS.items():
    for _name, _hint in typing.get_type_hints(_cls).items():
        if _name in _FIELDS:  # pragma: no cover - a programming error, caught by the tests at once
            raise TypeError(f"setting {_name} is defined twice")
        _FIELDS[_name] = (_group, _hint)


def env_var(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return ENV_PREFIX + field_name.upper()


def all_field_names() -> list[str]:
    """Every setting name: the top-level ones, then each group's, in declaration order."""
    top = [f.name for f in dataclasses.fields(Settings) if f.name not in GROUPS]
    return [*top, *(f.name for cls in GROUPS.values() for f in dataclasses.fields(cls))]


def group_of(field_name: str) -> str:
    """The group holding ``field_name`` ("" for a top-level field)."""
    return _FIELDS[field_name][0]


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read settings once: defaults, then the YAML file, then ``environ``, then ``overrides``
    (the command-line flags that were given). Raises :class:`SettingsError` on any unknown
    key, unreadable file or bad value.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get(env_var("config")) or None
    if path:
        values.update(_read_yaml(Path(path)))
    if "namespace" not in values and env.get("POD_NAMESPACE"):
        # In-cluster, the downward API tells the injector which namespace is its own.
        values["namespace"] = env["POD_NAMESPACE"]
    for name in all_field_names():
        raw = env.get(env_var(name))
        if raw is not None:
            values[name] = raw
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    return _with_config_hash(_build(values))


def _with_config_hash(settings: Settings) -> Settings:
    """Fill ``config_hash`` from ``collector_config_file`` when only the file is given."""
    if not settings.collector_config_file or settings.injection.config_hash:
        return settings
    try:
        data = Path(settings.collector_config_file).read_bytes()
    except OSError as err:
        raise SettingsError(f"collector_config_file {settings.collector_config_file}: {err.strerror}") from None
    injection = dataclasses.replace(settings.injection, config_hash=config_hash(data))
    return dataclasses.replace(settings, injection=injection)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SettingsError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise SettingsError(f"config file {path} is not valid YAML: {_one_line(err)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"config file {path} must hold a mapping of settings")
    unknown = sorted(set(map(str, loaded)) - set(all_field_names()))
    if unknown:
        raise SettingsError(f"config file {path}: unknown settings {', '.join(unknown)}")
    return {str(k): v for k, v in loaded.items()}


def _build(values: Mapping[str, Any]) -> Settings:
    coerced = {k: _coerce(k, _FIELDS[k][1], v) for k, v in values.items() if k in _FIELDS}
    namespace = coerced.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace:
        raise SettingsError("namespace must be a non-empty string")
    try:
        groups = {
            group: cls(**{k: v for k, v in coerced.items() if _FIELDS[k][0] == group}) for group, cls in GROUPS.items()
        }
        return Settings(**{k: v for k, v in coerced.items() if not _FIELDS[k][0]}, **groups)
    except TypeError as err:
        raise SettingsError(str(err)) from None


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Turn an env/YAML value into the field's type, with an error that names the setting."""
    try:
        return convert(kind, value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: cannot use {value!r} ({env_var(name)})") from None


def convert(kind: Any, value: Any) -> Any:
    """``value`` (text from the environment, or a YAML scalar or list) as type ``kind``.

    Raises ValueError or TypeError for a value that is not one; :class:`NotImplementedError`
    for a type no setting may have (a programming error)."""
    origin = typing.get_origin(kind)
    if kind is bool:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(value)
        return lowered in ("true", "1", "yes")
    if kind is int or kind is float:
        if isinstance(value, (bool, dict, list)) or (kind is int and isinstance(value, float)):
            raise TypeError(value)
        number = kind(value.strip() if isinstance(value, str) else value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    if origin is tuple and typing.get_args(kind) == (str, Ellipsis):
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(i).strip() for i in items if str(i).strip())
    if kind is str or (origin is Literal and all(isinstance(a, str) for a in typing.get_args(kind))):
        if isinstance(value, (dict, list)):
            raise TypeError(value)
        return str(value)
    raise NotImplementedError(f"settings of type {kind!r} cannot be read from text")


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def describe_settings(settings: Settings) -> dict[str, Any]:
    """A flat, JSON-able view of every setting, groups included, for the start-up log line."""
    flat = {k: v for k, v in dataclasses.asdict(settings).items() if k not in GROUPS}
    for group in GROUPS:
        flat.update(dataclasses.asdict(getattr(settings, group)))
    return flat
