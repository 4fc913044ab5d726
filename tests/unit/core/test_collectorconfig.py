"""choose_collector_config: a known name mounts its copy with its hash; anything else the default."""

from __future__ import annotations

from webhook.core.collectorconfig import ConfigChoice, choose_collector_config
from webhook.core.settings import InjectionSettings

NAMED = "otel-injector.io/collector-config"
CONFIGS = {"team-a": "aaaa"}
SETTINGS = InjectionSettings()


def test_a_known_name_is_chosen() -> None:
    choice, notices = choose_collector_config({NAMED: " team-a "}, CONFIGS, SETTINGS)
    assert choice == ConfigChoice("team-a", "otel-collector-sidecar-team-a", "aaaa")
    assert notices == []


def test_no_annotation_no_choice() -> None:
    assert choose_collector_config({}, CONFIGS, SETTINGS) == (None, [])


def test_unknown_and_malformed_names_warn_and_use_the_default() -> None:
    for value, why in (("team-b", "names no collector config"), ("Team_A", "is not a collector config name")):
        choice, (notice,) = choose_collector_config({NAMED: value}, CONFIGS, SETTINGS)
        assert choice is None
        assert notice.reason == "invalid-collector-config"
        assert why in notice.message
        assert notice.message.endswith("using the default config")


def test_the_user_managed_config_wins_at_the_same_level() -> None:
    choice, (notice,) = choose_collector_config({NAMED: "team-a", "otel-injector.io/config": "mine"}, CONFIGS, SETTINGS)
    assert choice is None
    assert "otel-injector.io/config is set too" in notice.message
