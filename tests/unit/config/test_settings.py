"""Settings: precedence, validation with named errors, derived values, immutability."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pytest

from webhook.config import settings as settings_module
from webhook.config.settings import (
    GROUPS,
    Settings,
    all_field_names,
    convert,
    describe_settings,
    env_var,
    group_of,
    load_settings,
)
from webhook.core import names
from webhook.core.settings import (
    BASE_SYSTEM_NAMESPACES,
    DEFAULT_IMAGE,
    DEFAULT_NAMESPACE,
    InjectionSettings,
    SettingsError,
    config_hash,
)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_with_empty_environment() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.port == 8443
    assert settings.injection.sidecar_image == DEFAULT_IMAGE
    assert settings.injection.sidecar_mode == "native"
    assert settings.injection.namespace == DEFAULT_NAMESPACE
    assert settings.injection.config_map == names.CONFIGMAP_NAME
    assert settings.injection.config_hash == ""


def test_env_var_names() -> None:
    assert env_var("port") == "OTEL_INJECTOR_PORT"
    assert env_var("sidecar_cpu_limit") == "OTEL_INJECTOR_SIDECAR_CPU_LIMIT"
    assert all_field_names()[0] == "port"
    assert "sidecar_image" in all_field_names()
    assert "injection" not in all_field_names()


def test_file_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "port: 9000\nsidecar_cpu_limit: 1\n")
    settings = load_settings(config_file=path, environ={})
    assert settings.port == 9000
    assert settings.injection.sidecar_cpu_limit == "1"


def test_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "port: 9000\nsidecar_mode: container\n")
    settings = load_settings(config_file=path, environ={"OTEL_INJECTOR_PORT": "9100"})
    assert settings.port == 9100
    assert settings.injection.sidecar_mode == "container"


def test_flag_beats_env_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "port: 9000\n")
    settings = load_settings(
        config_file=path,
        environ={"OTEL_INJECTOR_PORT": "9100"},
        overrides={"port": 9200, "tls_cert": None},
    )
    assert settings.port == 9200
    # A flag that was not given (None) does not erase a lower layer.
    assert settings.tls_cert == ""


def test_none_flag_does_not_hide_env() -> None:
    settings = load_settings(environ={"OTEL_INJECTOR_TLS_CERT": "/c.pem"}, overrides={"tls_cert": None})
    assert settings.tls_cert == "/c.pem"


def test_config_file_from_env_var(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "workers: 3\n")
    settings = load_settings(environ={"OTEL_INJECTOR_CONFIG": path})
    assert settings.workers == 3


def test_explicit_config_file_beats_env_config_path(tmp_path: Path) -> None:
    explicit = write(tmp_path / "a.yaml", "workers: 2\n")
    from_env = write(tmp_path / "b.yaml", "workers: 5\n")
    settings = load_settings(config_file=explicit, environ={"OTEL_INJECTOR_CONFIG": from_env})
    assert settings.workers == 2


def test_empty_yaml_file_is_all_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "")
    assert load_settings(config_file=path, environ={}) == Settings()


def test_unknown_yaml_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "port: 9000\nsidecar_imagee: x\nzzz: 1\n")
    with pytest.raises(SettingsError) as info:
        load_settings(config_file=path, environ={})
    assert str(info.value) == f"config file {path}: unknown settings sidecar_imagee, zzz"


def test_yaml_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "- a\n- b\n")
    with pytest.raises(SettingsError, match=r"must hold a mapping of settings$"):
        load_settings(config_file=path, environ={})


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "port: [1,\n  2\nx: {\n")
    with pytest.raises(SettingsError) as info:
        load_settings(config_file=path, environ={})
    message = str(info.value)
    assert message.startswith(f"config file {path} is not valid YAML: ")
    assert "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SettingsError) as info:
        load_settings(config_file=path, environ={})
    assert str(info.value) == f"cannot read config file {path}: No such file or directory"


@pytest.mark.parametrize(
    "name",
    ["sidecar_cpu_request", "sidecar_cpu_limit", "sidecar_memory_request", "sidecar_memory_limit"],
)
def test_bad_quantity_names_the_setting(name: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={env_var(name): "lots"})
    assert str(info.value).startswith(f"{name}: 'lots' is not a Kubernetes quantity")


def test_bad_int_names_setting_and_env_var() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"OTEL_INJECTOR_PORT": "eighty"})
    assert str(info.value) == "port: cannot use 'eighty' (OTEL_INJECTOR_PORT)"


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "workers: true\n")
    with pytest.raises(SettingsError, match=r"^workers: cannot use True"):
        load_settings(config_file=path, environ={})


def test_mapping_for_a_string_setting(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "sidecar_image: {a: 1}\n")
    with pytest.raises(SettingsError, match=r"^sidecar_image: cannot use"):
        load_settings(config_file=path, environ={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_INJECTOR_SIDECAR_MODE": "sidecar"}, "sidecar_mode must be one of native, container, not 'sidecar'"),
        (
            {"OTEL_INJECTOR_APP_OTLP_PROTOCOL": "http/json"},
            "app_otlp_protocol must be one of grpc, http/protobuf, not 'http/json'",
        ),
        (
            {"OTEL_INJECTOR_SIDECAR_IMAGE_PULL_POLICY": "Sometimes"},
            "sidecar_image_pull_policy must be one of Always, IfNotPresent, Never, not 'Sometimes'",
        ),
        ({"OTEL_INJECTOR_GOMEMLIMIT_PERCENT": "9"}, "gomemlimit_percent must be between 10 and 100"),
        ({"OTEL_INJECTOR_GOMEMLIMIT_PERCENT": "101"}, "gomemlimit_percent must be between 10 and 100"),
        ({"OTEL_INJECTOR_SIDECAR_IMAGE": "  "}, "sidecar_image must not be empty"),
        ({"OTEL_INJECTOR_PORT": "0"}, "port must be 1-65535, not 0"),
        ({"OTEL_INJECTOR_PORT": "65536"}, "port must be 1-65535, not 65536"),
        ({"OTEL_INJECTOR_WORKERS": "0"}, "workers must be at least 1"),
        ({"OTEL_INJECTOR_MAX_BODY_BYTES": "1023"}, "max_body_bytes must be at least 1024"),
        ({"OTEL_INJECTOR_NAMESPACE": ""}, "namespace must be a non-empty string"),
    ],
)
def test_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=env)
    assert str(info.value) == message


def test_boundary_values_accepted() -> None:
    settings = load_settings(
        environ={
            "OTEL_INJECTOR_PORT": "65535",
            "OTEL_INJECTOR_GOMEMLIMIT_PERCENT": "10",
            "OTEL_INJECTOR_MAX_BODY_BYTES": "1024",
        }
    )
    assert (settings.port, settings.injection.gomemlimit_percent, settings.max_body_bytes) == (65535, 10, 1024)


def test_pod_namespace_sets_injector_namespace() -> None:
    settings = load_settings(environ={"POD_NAMESPACE": "observability"})
    assert settings.injection.namespace == "observability"
    assert "observability" in settings.injection.excluded_namespaces
    assert DEFAULT_NAMESPACE not in settings.injection.excluded_namespaces


def test_namespace_env_and_file_beat_pod_namespace(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "namespace: from-file\n")
    assert load_settings(config_file=path, environ={"POD_NAMESPACE": "pod-ns"}).injection.namespace == "from-file"
    from_env = load_settings(environ={"POD_NAMESPACE": "pod-ns", "OTEL_INJECTOR_NAMESPACE": "from-env"})
    assert from_env.injection.namespace == "from-env"


def test_excluded_namespaces_are_system_plus_own() -> None:
    injection = InjectionSettings(namespace="tracing-system")
    assert injection.excluded_namespaces == frozenset({*BASE_SYSTEM_NAMESPACES, "tracing-system"})
    assert BASE_SYSTEM_NAMESPACES == ("kube-system", "kube-public", "kube-node-lease")


def test_system_namespaces_from_comma_list() -> None:
    settings = load_settings(environ={"OTEL_INJECTOR_SYSTEM_NAMESPACES": " kube-system, ,istio-system "})
    assert settings.injection.system_namespaces == ("kube-system", "istio-system")
    assert settings.injection.excluded_namespaces == frozenset({"kube-system", "istio-system", DEFAULT_NAMESPACE})


def test_system_namespaces_from_yaml_list(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "system_namespaces: [a, b]\n")
    assert load_settings(config_file=path, environ={}).injection.system_namespaces == ("a", "b")


def test_config_hash_filled_from_collector_config_file(tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_bytes(b"receivers: {}\n")
    settings = load_settings(environ={"OTEL_INJECTOR_COLLECTOR_CONFIG_FILE": str(config)})
    # The first 16 hex digits of sha256(b"receivers: {}\n"): a fixed value, not just "some hash".
    assert settings.injection.config_hash == "a2562a2b6beb468e"
    assert config_hash(b"") == "e3b0c44298fc1c14"


def test_explicit_config_hash_is_kept(tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_bytes(b"x")
    settings = load_settings(
        environ={"OTEL_INJECTOR_COLLECTOR_CONFIG_FILE": str(config), "OTEL_INJECTOR_CONFIG_HASH": "pinned"}
    )
    assert settings.injection.config_hash == "pinned"


def test_unreadable_collector_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"OTEL_INJECTOR_COLLECTOR_CONFIG_FILE": str(missing)})
    assert str(info.value) == f"collector_config_file {missing}: No such file or directory"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.injection.sidecar_image = "evil"  # type: ignore[misc]


def test_replace_validates() -> None:
    with pytest.raises(SettingsError, match=r"^sidecar_memory_limit: "):
        dataclasses.replace(InjectionSettings(), sidecar_memory_limit="-1Gi")


def test_describe_settings_is_flat() -> None:
    flat = describe_settings(Settings(port=9443))
    assert flat["port"] == 9443
    assert flat["sidecar_image"] == DEFAULT_IMAGE
    assert "injection" not in flat
    assert set(flat) == set(all_field_names())


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("Yes", True), ("1", True), ("false", False), ("no", False)]
)
def test_bool_settings_from_env(raw: str, expected: bool) -> None:
    assert load_settings(environ={"OTEL_INJECTOR_RECONCILE": raw}).reconcile is expected


def test_bad_bool_names_the_setting() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"OTEL_INJECTOR_RECONCILE": "maybe"})
    assert str(info.value) == "reconcile: cannot use 'maybe' (OTEL_INJECTOR_RECONCILE)"


def test_http_limits_default_to_the_documented_values_and_read_from_env() -> None:
    defaults = load_settings(environ={})
    assert (defaults.max_header_bytes, defaults.max_headers) == (16 * 1024, 100)
    assert (defaults.header_timeout_seconds, defaults.body_timeout_seconds) == (10.0, 20.0)
    # Headers and body together within the apiserver's longest webhook timeout.
    assert defaults.header_timeout_seconds + defaults.body_timeout_seconds <= 30
    tuned = load_settings(environ={env_var("header_timeout_seconds"): "2.5", env_var("max_headers"): "50"})
    assert (tuned.header_timeout_seconds, tuned.max_headers) == (2.5, 50)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("header_timeout_seconds", "0"),
        ("body_timeout_seconds", "61"),
        ("max_header_bytes", "100"),
        ("max_headers", "2"),
    ],
)
def test_http_limits_out_of_range_are_errors(name: str, value: str) -> None:
    with pytest.raises(SettingsError):
        load_settings(environ={env_var(name): value})


def test_every_setting_reads_back_its_own_default_from_text() -> None:
    """Each field's real type has a conversion, and the text of its default gives it back."""
    hints = {name: settings_module._FIELDS[name][1] for name in all_field_names()}
    defaults = describe_settings(Settings())
    for name, hint in hints.items():
        value = defaults[name]
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        assert convert(hint, text) == value, name


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (bool, "yes", True),
        (int, " 42 ", 42),
        (float, "0.5", 0.5),
        (float, 3, 3.0),
        (str, 7, "7"),
        (tuple[str, ...], "a, b,,c", ("a", "b", "c")),
        (tuple[str, ...], ["a", " b "], ("a", "b")),
        (Literal["x", "y"], "x", "x"),
    ],
)
def test_conversion_dispatches_on_the_real_type(kind: Any, raw: Any, expected: Any) -> None:
    assert convert(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"), [(int, "1.5"), (int, 1.5), (int, True), (float, "nan"), (float, [1]), (str, {"a": 1})]
)
def test_conversion_refuses_what_is_not_of_the_type(kind: Any, raw: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        convert(kind, raw)


def test_a_type_no_setting_may_have_is_a_programming_error() -> None:
    with pytest.raises(NotImplementedError):
        convert(dict[str, str], "a=b")


def test_names_are_unique_across_groups() -> None:
    names_ = all_field_names()
    assert len(names_) == len(set(names_))
    assert {group_of("port"), group_of("sidecar_image"), group_of("resync_seconds"), group_of("cert_poll_seconds")} == {
        "",
        "injection",
        "cluster",
        "serving",
    }


def test_describe_settings_holds_every_knob_of_every_group() -> None:
    flat = describe_settings(Settings())
    for group in GROUPS:
        assert group not in flat
    assert flat["lease_duration_seconds"] == 15.0
    assert flat["gil_switch_interval_seconds"] == 0.0005


def test_repair_settings_default_off_and_are_checked() -> None:
    defaults = load_settings(environ={})
    assert (defaults.missing_sidecars, defaults.repair_missing_sidecars, defaults.max_restarts_per_minute) == (
        True,
        False,
        2,
    )
    on = load_settings(
        environ={"OTEL_INJECTOR_REPAIR_MISSING_SIDECARS": "true", "OTEL_INJECTOR_MAX_RESTARTS_PER_MINUTE": "5"}
    )
    assert (on.repair_missing_sidecars, on.max_restarts_per_minute) == (True, 5)
    with pytest.raises(SettingsError, match="max_restarts_per_minute must be at least 1"):
        load_settings(environ={"OTEL_INJECTOR_MAX_RESTARTS_PER_MINUTE": "0"})


@pytest.mark.parametrize("value", ["node", "http://otel-gateway.observability.svc:4318", "https://gw.example"])
def test_env_only_endpoint_default(value: str) -> None:
    loaded = load_settings(environ={"OTEL_INJECTOR_ENV_ONLY_ENDPOINT": value})
    assert loaded.injection.env_only_endpoint == value


@pytest.mark.parametrize("value", ["gateway:4317", "http://u:p@gw", "http://$(X):4318"])
def test_bad_env_only_endpoint_is_refused_at_start_up(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^env_only_endpoint "):
        load_settings(environ={"OTEL_INJECTOR_ENV_ONLY_ENDPOINT": value})
