"""Per-pod override annotations: each one valid and invalid, and no way out of its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.core import names, overrides
from webhook.core.endpoint import NODE_ENDPOINT, AppEndpoint
from webhook.core.overrides import Notice, PodOverrides, read_overrides
from webhook.core.settings import DEFAULT_IMAGE, InjectionSettings
from webhook.core.sidecar import build_sidecar, build_volume, security_context

SETTINGS = InjectionSettings()
DEFAULTS = PodOverrides(
    service_name=None,
    sidecar_mode="native",
    cpu_request="50m",
    cpu_limit="500m",
    memory_request="64Mi",
    memory_limit="256Mi",
    image=DEFAULT_IMAGE,
    config_map=names.CONFIGMAP_NAME,
    containers=None,
)
SIDECAR_KEYS = {
    "name",
    "image",
    "imagePullPolicy",
    "args",
    "ports",
    "env",
    "resources",
    "volumeMounts",
    "startupProbe",
    "readinessProbe",
    "livenessProbe",
    "securityContext",
    "terminationMessagePolicy",
    "restartPolicy",
}


def read(annotations: dict[str, str], containers: tuple[str, ...] = ("app",)) -> tuple[PodOverrides, list[Notice]]:
    return read_overrides(annotations, SETTINGS, containers)


def test_no_annotations_gives_defaults() -> None:
    assert read({}) == (DEFAULTS, [])


def test_other_annotations_are_ignored() -> None:
    assert read({"example.com/foo": "bar", names.STATUS_ANNOTATION: "{}", names.MANAGED_ANNOTATION: "false"}) == (
        DEFAULTS,
        [],
    )


@pytest.mark.parametrize(
    ("annotation", "value", "field", "expected"),
    [
        (overrides.SERVICE_NAME, " checkout ", "service_name", "checkout"),
        (overrides.SIDECAR_MODE, "container", "sidecar_mode", "container"),
        (overrides.SIDECAR_MODE, "native", "sidecar_mode", "native"),
        (overrides.CPU_REQUEST, "100m", "cpu_request", "100m"),
        (overrides.CPU_LIMIT, "2", "cpu_limit", "2"),
        (overrides.MEMORY_REQUEST, "128Mi", "memory_request", "128Mi"),
        (overrides.MEMORY_LIMIT, "1Gi", "memory_limit", "1Gi"),
        (
            overrides.IMAGE,
            "registry.example.com:5000/team/otelcol:1.2.3",
            "image",
            "registry.example.com:5000/team/otelcol:1.2.3",
        ),
        (overrides.IMAGE, "otelcol@sha256:" + "a" * 64, "image", "otelcol@sha256:" + "a" * 64),
        (overrides.CONFIG, "my-collector.v2", "config_map", "my-collector.v2"),
        (overrides.CONTAINERS, "app", "containers", ("app",)),
    ],
)
def test_valid_annotation_sets_only_its_field(annotation: str, value: str, field: str, expected: object) -> None:
    result, notices = read({annotation: value})
    assert notices == []
    assert getattr(result, field) == expected
    for other in PodOverrides.__dataclass_fields__:
        if other != field:
            assert getattr(result, other) == getattr(DEFAULTS, other), other


CONFIGMAP = names.CONFIGMAP_NAME
NOT_QUANTITY = "is not a Kubernetes quantity (e.g. 100m, 128Mi)"


def floor(value: str) -> str:
    return f"is below {value}, the least a collector sidecar starts with"


@pytest.mark.parametrize(
    ("annotation", "value", "why", "default"),
    [
        (overrides.SERVICE_NAME, "", "is not a usable service name", "derived from the pod"),
        (overrides.SERVICE_NAME, "a\nb", "is not a usable service name", "derived from the pod"),
        (overrides.SERVICE_NAME, "x" * 256, "is not a usable service name", "derived from the pod"),
        (overrides.SIDECAR_MODE, "sidecar", "is not native, container or none", "native"),
        (overrides.SIDECAR_MODE, "Native", "is not native, container or none", "native"),
        (overrides.CPU_REQUEST, "lots", NOT_QUANTITY, "50m"),
        (overrides.CPU_LIMIT, "-1", "is negative", "500m"),
        (overrides.CPU_LIMIT, "0", floor("10m"), "500m"),
        (overrides.CPU_LIMIT, "1n", floor("10m"), "500m"),
        (overrides.CPU_LIMIT, "9m", floor("10m"), "500m"),
        (overrides.CPU_REQUEST, "0", floor("1m"), "50m"),
        (overrides.CPU_REQUEST, "100u", floor("1m"), "50m"),
        (overrides.MEMORY_REQUEST, "1n", floor("1Mi"), "64Mi"),
        (overrides.MEMORY_REQUEST, "1000Ki", floor("1Mi"), "64Mi"),
        (overrides.MEMORY_LIMIT, "1n", floor("32Mi"), "256Mi"),
        (overrides.MEMORY_LIMIT, "31Mi", floor("32Mi"), "256Mi"),
        (overrides.MEMORY_REQUEST, "1 Mi", NOT_QUANTITY, "64Mi"),
        (overrides.MEMORY_LIMIT, "0Mi", floor("32Mi"), "256Mi"),
        (overrides.MEMORY_LIMIT, "1mi", NOT_QUANTITY, "256Mi"),
        (overrides.IMAGE, "Nginx", "is not an image reference", DEFAULT_IMAGE),
        (overrides.IMAGE, "nginx latest", "is not an image reference", DEFAULT_IMAGE),
        (overrides.IMAGE, "", "is not an image reference", DEFAULT_IMAGE),
        (overrides.CONFIG, "My_Config", "is not a ConfigMap name", CONFIGMAP),
        (overrides.CONFIG, "a" * 254, "is not a ConfigMap name", CONFIGMAP),
        (overrides.CONTAINERS, "", "names no app container", "all app containers"),
    ],
)
def test_invalid_annotation_falls_back_with_notice(annotation: str, value: str, why: str, default: str) -> None:
    result, notices = read({annotation: value})
    assert result == DEFAULTS
    assert len(notices) == 1
    assert notices[0].reason == "invalid-" + annotation.removeprefix(names.ANNOTATION_PREFIX)
    shown = value if len(value) <= 64 else value[:61] + "..."
    assert notices[0].message == f"{annotation}: {shown!r} {why}; using the default {default}"


def test_invalid_value_is_shown_shortened() -> None:
    _, notices = read({overrides.IMAGE: "X" * 100})
    assert notices[0].message.startswith(f"{overrides.IMAGE}: '{'X' * 61}...' is not an image reference")


def test_invalid_mode_falls_back_to_configured_mode() -> None:
    settings = InjectionSettings(sidecar_mode="container")
    result, notices = read_overrides({overrides.SIDECAR_MODE: "bogus"}, settings, ["app"])
    assert result.sidecar_mode == "container"
    assert notices[0].message.endswith("using the default container")


def test_cpu_request_above_limit_falls_back_to_both_defaults() -> None:
    result, notices = read({overrides.CPU_REQUEST: "2", overrides.CPU_LIMIT: "1"})
    assert (result.cpu_request, result.cpu_limit) == ("50m", "500m")
    assert notices == [
        Notice(
            "invalid-cpu-request", f"{overrides.CPU_REQUEST}: 2 exceeds the limit 1; using the defaults 50m and 500m"
        )
    ]


def test_memory_request_above_default_limit_falls_back() -> None:
    result, notices = read({overrides.MEMORY_REQUEST: "1Gi"})
    assert (result.memory_request, result.memory_limit) == ("64Mi", "256Mi")
    assert [n.reason for n in notices] == ["invalid-memory-request"]
    assert "1Gi exceeds the limit 256Mi" in notices[0].message


def test_request_equal_to_limit_is_fine() -> None:
    result, notices = read({overrides.MEMORY_REQUEST: "256Mi", overrides.CPU_REQUEST: "0.5"})
    assert notices == []
    assert (result.memory_request, result.cpu_request) == ("256Mi", "0.5")


def test_limit_below_default_request_falls_back() -> None:
    result, notices = read({overrides.CPU_LIMIT: "10m"})
    assert (result.cpu_request, result.cpu_limit) == ("50m", "500m")
    assert [n.reason for n in notices] == ["invalid-cpu-request"]


def test_unknown_prefixed_annotation_gives_notice() -> None:
    result, notices = read({"otel-injector.io/foo": "bar"})
    assert result == DEFAULTS
    assert len(notices) == 1
    assert notices[0].reason == "unknown-annotation"
    assert notices[0].message.startswith("otel-injector.io/foo: unknown annotation, ignored (known: service-name, ")
    assert notices[0].message.endswith("config, containers, endpoint)")


def test_containers_subset_with_unknown_names() -> None:
    result, notices = read({overrides.CONTAINERS: "web, ghost, web,worker"}, ("web", "worker", "db"))
    assert result.containers == ("web", "worker")
    assert notices == [Notice("unknown-container", f"{overrides.CONTAINERS}: no app container named ghost; ignored")]


def test_containers_only_unknown_names() -> None:
    result, notices = read({overrides.CONTAINERS: "ghost,phantom"}, ("web",))
    assert result.containers is None
    # One notice for one mistake: the fallback already says nothing matched.
    assert notices == [
        Notice(
            "invalid-containers",
            f"{overrides.CONTAINERS}: 'ghost,phantom' names no app container; using the default all app containers",
        )
    ]


def test_numeric_annotation_values_from_yaml_are_read_as_text() -> None:
    """``cpu-limit: 2`` unquoted in a manifest given to ``inject`` means "2", not nothing."""
    result, notices = read_overrides({overrides.CPU_LIMIT: 2}, SETTINGS, ["app"])  # type: ignore[dict-item]
    assert result.cpu_limit == "2"
    assert notices == []


def test_other_non_string_annotation_values_are_ignored() -> None:
    values = {overrides.CPU_LIMIT: ["2"], overrides.SIDECAR_MODE: True}
    result, notices = read_overrides(values, SETTINGS, ["app"])  # type: ignore[arg-type]
    assert (result, notices) == (DEFAULTS, [])


def test_several_notices_are_all_reported() -> None:
    _, notices = read({overrides.IMAGE: "BAD IMAGE", overrides.CONFIG: "Bad", "otel-injector.io/zzz": "1"})
    assert [n.reason for n in notices] == ["invalid-image", "invalid-config", "unknown-annotation"]


INJECTION_ATTEMPTS = [
    "nginx\n  securityContext: {privileged: true}",
    'nginx"\n  securityContext:\n    privileged: true\n#',
    '"},{"name":"X","securityContext":{"privileged":true}},{"a":"',
    "x', privileged: true, y: '",
    "nginx:latest\nrunAsUser: 0",
    "{{ .Values.evil }}",
]


@pytest.mark.parametrize("evil", INJECTION_ATTEMPTS)
def test_hostile_values_only_reach_their_own_field(evil: str) -> None:
    annotations = dict.fromkeys(overrides.OVERRIDE_ANNOTATIONS, evil)
    result, notices = read(annotations)
    # Everything that can hold structure is rejected; at most the service name survives as
    # an opaque string (it only ever becomes one env value).
    assert result.image == DEFAULT_IMAGE
    assert result.config_map == names.CONFIGMAP_NAME
    assert result.sidecar_mode == "native"
    assert (result.cpu_request, result.cpu_limit, result.memory_request, result.memory_limit) == (
        "50m",
        "500m",
        "64Mi",
        "256Mi",
    )
    assert result.containers is None
    assert result.service_name in (None, evil.strip())
    assert result.endpoint is None  # sidecar-mode is not "none", so the endpoint is unused
    assert all(n.reason.startswith(("invalid-", "unknown-", "unused-")) for n in notices)

    sidecar = build_sidecar(result, SETTINGS)
    assert sidecar["securityContext"] == security_context()
    assert set(sidecar) == SIDECAR_KEYS
    assert sidecar["image"] == DEFAULT_IMAGE
    assert build_volume(result) == build_volume(DEFAULTS)
    assert evil not in json.dumps(sidecar)


def test_service_name_json_breakout_is_just_a_string() -> None:
    evil = '"},{"name":"X","value":"Y'
    result, notices = read({overrides.SERVICE_NAME: evil})
    assert notices == []
    assert result.service_name == evil
    sidecar: dict[str, Any] = build_sidecar(result, SETTINGS)
    assert sidecar == build_sidecar(DEFAULTS, SETTINGS)
    assert [e["name"] for e in sidecar["env"]] == [
        "K8S_POD_NAME",
        "K8S_NAMESPACE_NAME",
        "K8S_POD_UID",
        "K8S_NODE_NAME",
        "GOMEMLIMIT",
    ]


def test_containers_annotation_is_linear_in_its_names() -> None:
    import time

    containers = tuple(f"c{i}" for i in range(50_000))
    wanted = ",".join([*containers, *(f"missing{i}" for i in range(50_000))])
    started = time.perf_counter()
    result, notices = read({overrides.CONTAINERS: wanted}, containers)
    assert time.perf_counter() - started < 2.0
    assert result.containers == containers
    (notice,) = notices
    assert notice.message.endswith("missing0, missing1, missing2, missing3, missing4 and 49,995 more; ignored")


def test_many_unknown_annotations_give_a_bounded_number_of_notices() -> None:
    annotations = {f"otel-injector.io/x{i}": "v" for i in range(10_000)}
    _, notices = read(annotations)
    assert len(notices) == 6
    assert notices[-1].message == "9,995 more unknown otel-injector.io/ annotations, ignored"


# --- env only (sidecar-mode none) ---


def test_env_only_with_node_or_a_url() -> None:
    result, notices = read({overrides.SIDECAR_MODE: "none", overrides.ENDPOINT: "node"})
    assert notices == []
    assert result.endpoint == NODE_ENDPOINT
    result, _ = read({overrides.SIDECAR_MODE: "none", overrides.ENDPOINT: "http://gw.obs.svc:4318"})
    assert result.endpoint == AppEndpoint("url", "http://gw.obs.svc:4318")


def test_env_only_default_endpoint_and_the_annotation_over_it() -> None:
    settings = InjectionSettings(env_only_endpoint="node")
    result, notices = read_overrides({overrides.SIDECAR_MODE: "none"}, settings, ["app"])
    assert (result.endpoint, notices) == (NODE_ENDPOINT, [])
    result, _ = read_overrides({overrides.SIDECAR_MODE: "none", overrides.ENDPOINT: "https://gw"}, settings, ["app"])
    assert result.endpoint == AppEndpoint("url", "https://gw")


def test_env_only_without_a_usable_endpoint_gets_the_default_sidecar() -> None:
    result, notices = read({overrides.SIDECAR_MODE: "none"})
    assert result.endpoint is None
    assert result.sidecar_mode == "native"
    assert [n.reason for n in notices] == ["missing-endpoint"]
    settings = InjectionSettings(sidecar_mode="container", env_only_endpoint="node")
    bad = {overrides.SIDECAR_MODE: "none", overrides.ENDPOINT: "http://u:secret@gw"}
    result, notices = read_overrides(bad, settings, ["app"])
    assert (result.endpoint, result.sidecar_mode) == (None, "container")  # the bad annotation is not replaced
    assert notices == [
        Notice(
            "invalid-endpoint",
            "otel-injector.io/endpoint: 'http://***@gw' contains user info; using a container sidecar",
        )
    ]


def test_an_endpoint_without_env_only_is_ignored_with_a_notice() -> None:
    result, notices = read({overrides.ENDPOINT: "node"})
    assert result.endpoint is None
    assert [n.reason for n in notices] == ["unused-endpoint"]
