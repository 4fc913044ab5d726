"""Settings, read once into frozen objects.

Precedence, highest first: command-line flag, environment variable, YAML config file,
built-in default. Every setting has an environment variable named ``OTEL_INJECTOR_<FIELD>``
(upper-cased), and the YAML file uses the field names as keys. Unknown keys and bad values
are errors at start-up, not surprises at admission time.

:class:`~webhook.core.settings.InjectionSettings` holds only what the pure mutation needs;
:class:`Settings` adds what the server needs around it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

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
    injection: InjectionSettings = field(default_factory=InjectionSettings)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1-65535, not {self.port}")
        if self.workers < 1:
            raise SettingsError("workers must be at least 1")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024")
        check_choice("cert_mode", self.cert_mode, CERT_MODES)

    @property
    def needs_kubernetes(self) -> bool:
        """Whether the process talks to the Kubernetes API (reconciler or cert bootstrap)."""
        return self.reconcile or self.cert_mode == "self-managed"


_INJECTION_FIELDS = {f.name: f for f in dataclasses.fields(InjectionSettings)}
_SERVER_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "injection"}


def env_var(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return ENV_PREFIX + field_name.upper()


def all_field_names() -> list[str]:
    """Every setting name, server and injection alike, in declaration order."""
    return [*_SERVER_FIELDS, *_INJECTION_FIELDS]


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
    injection = {k: _coerce(_INJECTION_FIELDS[k], v) for k, v in values.items() if k in _INJECTION_FIELDS}
    server = {k: _coerce(_SERVER_FIELDS[k], v) for k, v in values.items() if k in _SERVER_FIELDS}
    namespace = injection.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace:
        raise SettingsError("namespace must be a non-empty string")
    try:
        return Settings(injection=InjectionSettings(**injection), **server)
    except TypeError as err:
        raise SettingsError(str(err)) from None


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    """Turn env/YAML values into the field's type, with an error that names the setting."""
    kind = str(f.type)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if isinstance(value, (dict, list)):
            raise TypeError(value)
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{f.name}: cannot use {value!r} ({env_var(f.name)})") from None


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def describe_settings(settings: Settings) -> dict[str, Any]:
    """A flat, JSON-able view of the settings for the start-up log line."""
    flat = {k: v for k, v in dataclasses.asdict(settings).items() if k != "injection"}
    flat.update(dataclasses.asdict(settings.injection))
    return flat
