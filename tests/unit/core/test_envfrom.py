"""user_env: the OTEL_* variables a container's envFrom ConfigMaps set, as the kubelet
resolves them, and the report of Secrets and missing ConfigMaps."""

from __future__ import annotations

from webhook.core.envfrom import EnvFromReport, user_env

MAPS = {
    "first": {"OTEL_SERVICE_NAME": "first", "OTEL_PROPAGATORS": "b3"},
    "second": {"OTEL_SERVICE_NAME": "second"},
    "bare": {"SERVICE_NAME": "prefixed"},
}


def container(*sources: object) -> dict[str, object]:
    return {"name": "app", "envFrom": list(sources)}


def test_a_later_source_wins_and_the_prefix_applies() -> None:
    report = EnvFromReport()
    values = user_env(
        container(
            {"configMapRef": {"name": "first"}},
            {"configMapRef": {"name": "second"}},
            {"configMapRef": {"name": "bare"}, "prefix": "OTEL_"},
            {"configMapRef": {"name": "first"}, "prefix": "X_"},
        ),
        MAPS,
        report,
        name="app",
    )
    assert values == {"OTEL_SERVICE_NAME": "prefixed", "OTEL_PROPAGATORS": "b3"}
    assert report.notices("in the cluster") == []


def test_secrets_are_never_read_and_named_in_one_warning() -> None:
    report = EnvFromReport()
    user_env(container({"secretRef": {"name": "creds"}}), MAPS, report, name="app")
    user_env(container({"secretRef": {"name": "more"}}), None, report, name="worker")
    (notice,) = report.notices("in the cluster")
    assert notice.reason == "env-from-secret"
    assert "container app (creds), worker (more)" in notice.message


def test_a_missing_configmap_is_reported_unless_optional() -> None:
    report = EnvFromReport()
    values = user_env(
        container({"configMapRef": {"name": "gone"}}, {"configMapRef": {"name": "later", "optional": True}}),
        MAPS,
        report,
        name="app",
    )
    assert values == {}
    (notice,) = report.notices("in the input")
    assert notice.reason == "env-from-unknown"
    assert "ConfigMap gone not found in the input" in notice.message


def test_without_a_lookup_nothing_is_found_or_reported() -> None:
    report = EnvFromReport()
    assert user_env(container({"configMapRef": {"name": "first"}}), None, report, name="app") == {}
    assert report.notices("x") == []


def test_odd_shapes_are_ignored() -> None:
    report = EnvFromReport()
    assert user_env({"envFrom": "x"}, MAPS, report, name="a") == {}
    odd = container("x", {"configMapRef": {"name": 3}}, {"configMapRef": {"name": "first"}, "prefix": 5})
    assert user_env(odd, MAPS, report, name="a") == MAPS["first"]
