"""The timing groups: defaults, validation with one line naming the field, and the path from
the environment to the constructor argument of each controller (no module reads them itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.config.settings import Settings, load_settings
from webhook.config.timings import ClusterTimings, ServingTimings
from webhook.core.settings import SettingsError

REPO = Path(__file__).resolve().parents[3]
KNOBS = {
    "OTEL_INJECTOR_RESYNC_SECONDS": "120",
    "OTEL_INJECTOR_POD_GRACE_SECONDS": "0",
    "OTEL_INJECTOR_CERT_SYNC_SECONDS": "1.5",
    "OTEL_INJECTOR_LEASE_DURATION_SECONDS": "4",
    "OTEL_INJECTOR_RENEW_DEADLINE_SECONDS": "3",
    "OTEL_INJECTOR_RETRY_PERIOD_SECONDS": "0.5",
    "OTEL_INJECTOR_CERT_POLL_SECONDS": "0.25",
    "OTEL_INJECTOR_GIL_SWITCH_INTERVAL_SECONDS": "0.001",
}


def test_defaults_are_the_documented_ones() -> None:
    assert Settings().cluster == ClusterTimings(300, 60, 30, 15, 10, 2)
    assert Settings().serving == ServingTimings(5, 0.0005)


def test_every_knob_comes_from_its_env_var() -> None:
    settings = load_settings(environ=KNOBS)
    assert settings.cluster == ClusterTimings(
        resync_seconds=120,
        pod_grace_seconds=0,
        cert_sync_seconds=1.5,
        lease_duration_seconds=4,
        renew_deadline_seconds=3,
        retry_period_seconds=0.5,
    )
    assert settings.serving == ServingTimings(cert_poll_seconds=0.25, gil_switch_interval_seconds=0.001)


def test_yaml_numbers_and_env_text_alike(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("resync_seconds: 90\ncert_poll_seconds: 2.5\n", encoding="utf-8")
    settings = load_settings(config_file=config, environ={"OTEL_INJECTOR_RESYNC_SECONDS": "45"})
    assert settings.cluster.resync_seconds == 45.0  # env beats the file
    assert settings.serving.cert_poll_seconds == 2.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_INJECTOR_RESYNC_SECONDS": "soon"}, "resync_seconds: cannot use 'soon' (OTEL_INJECTOR_RESYNC_SECONDS)"),
        (
            {"OTEL_INJECTOR_CERT_POLL_SECONDS": "nan"},
            "cert_poll_seconds: cannot use 'nan' (OTEL_INJECTOR_CERT_POLL_SECONDS)",
        ),
        (
            {"OTEL_INJECTOR_CERT_SYNC_SECONDS": "inf"},
            "cert_sync_seconds: cannot use 'inf' (OTEL_INJECTOR_CERT_SYNC_SECONDS)",
        ),
        ({"OTEL_INJECTOR_RESYNC_SECONDS": "0"}, "resync_seconds must be a positive number of seconds, not 0.0"),
        ({"OTEL_INJECTOR_POD_GRACE_SECONDS": "-1"}, "pod_grace_seconds must be zero or more seconds, not -1.0"),
        (
            {"OTEL_INJECTOR_RENEW_DEADLINE_SECONDS": "20"},
            "need retry_period_seconds < renew_deadline_seconds < lease_duration_seconds, not 2 / 20 / 15",
        ),
        (
            {"OTEL_INJECTOR_GIL_SWITCH_INTERVAL_SECONDS": "1"},
            "gil_switch_interval_seconds must be at most 0.1, not 1.0",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=env)
    assert str(info.value) == message


def test_no_module_reads_a_knob_at_import() -> None:
    """Importing every module with nonsense in every knob's variable works: only
    load_settings reads them, and only when called."""
    env = {**os.environ, **dict.fromkeys(KNOBS, "nonsense")}
    modules = "webhook.compose, webhook.http.server, webhook.cluster.controllers, webhook.telemetry.tracing"
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_only_the_settings_loader_names_the_environment_prefix() -> None:
    """No module outside webhook/config reads an OTEL_INJECTOR_ variable by name."""
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "webhook").rglob("*.py")
        if path.parent.name != "config" and "OTEL_INJECTOR_" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_restart_timings_are_read_and_checked() -> None:
    settings = load_settings(
        environ={
            "OTEL_INJECTOR_MISSING_PASS_SECONDS": "5",
            "OTEL_INJECTOR_RESTART_COOLDOWN_SECONDS": "60",
            "OTEL_INJECTOR_RESTART_COOLDOWN_MAX_SECONDS": "120",
            "OTEL_INJECTOR_ROLLOUT_WAIT_SECONDS": "30",
        }
    )
    timings = settings.cluster
    assert (timings.missing_pass_seconds, timings.restart_cooldown_seconds) == (5, 60)
    assert (timings.restart_cooldown_max_seconds, timings.rollout_wait_seconds) == (120, 30)
    assert ClusterTimings().restart_cooldown_seconds == 600
    with pytest.raises(SettingsError, match="restart_cooldown_seconds must not exceed"):
        ClusterTimings(restart_cooldown_seconds=100, restart_cooldown_max_seconds=50)
    with pytest.raises(SettingsError, match="missing_pass_seconds"):
        ClusterTimings(missing_pass_seconds=0)
