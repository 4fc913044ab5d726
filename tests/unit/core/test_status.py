"""The status record: its exact annotation bytes, a round trip, and a parser that never
raises and ignores what it does not know."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core.status import Status

RECORD = Status(
    version="0.1.0",
    config_hash="0123456789abcdef",
    config_map="otel-collector-sidecar",
    image="otel/opentelemetry-collector:0.162.0",
    mode="native",
    sidecars=("otel-collector",),
    volumes=("otel-collector-config",),
    env=("OTEL_PROPAGATORS", "OTEL_SERVICE_NAME"),
    env_containers=("app",),
)


def test_the_annotation_is_compact_key_sorted_json() -> None:
    assert RECORD.to_annotation() == (
        '{"configHash":"0123456789abcdef","configMap":"otel-collector-sidecar",'
        '"env":["OTEL_PROPAGATORS","OTEL_SERVICE_NAME"],"envContainers":["app"],'
        '"image":"otel/opentelemetry-collector:0.162.0","initContainers":["otel-collector"],'
        '"mode":"native","version":"0.1.0","volumes":["otel-collector-config"]}'
    )


def test_container_mode_lists_the_sidecar_under_containers() -> None:
    record = json.loads(Status(mode="container", sidecars=("otel-collector",)).to_annotation())
    assert record["containers"] == ["otel-collector"]
    assert "initContainers" not in record


@pytest.mark.parametrize("mode", ["native", "container"])
def test_round_trip(mode: str) -> None:
    record = Status(**{**RECORD.__dict__, "mode": mode})
    assert Status.parse(record.to_annotation()) == record


def test_unknown_fields_are_ignored_and_wrong_types_read_as_not_recorded() -> None:
    text = json.dumps({"configHash": 7, "image": "i", "volumes": "v", "env": ["A", 1], "future": {"x": 1}})
    assert Status.parse(text) == Status(image="i", env=("A",))


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '"a string"', "null", "[" * 100_000])
def test_what_is_not_a_json_object_is_none(text: str | None) -> None:
    assert Status.parse(text) is None


def test_a_record_that_does_not_name_its_configmap_mounts_the_configured_one() -> None:
    assert Status().mounts("otel-collector-sidecar")
    assert Status(config_map="otel-collector-sidecar").mounts("otel-collector-sidecar")
    assert not Status(config_map="own").mounts("otel-collector-sidecar")


@given(st.text(max_size=200))
def test_parse_never_raises(text: str) -> None:
    result = Status.parse(text)
    assert result is None or isinstance(result, Status)


def test_an_env_only_record_names_its_endpoint_and_no_sidecar() -> None:
    record = Status(version="0.1.0", mode="none", endpoint="node", env=("OTEL_NODE_IP",), env_containers=("app",))
    assert record.to_annotation() == (
        '{"endpoint":"node","env":["OTEL_NODE_IP"],"envContainers":["app"],"mode":"none","version":"0.1.0"}'
    )
    assert Status.parse(record.to_annotation()) == record
    assert record.env_only
    assert not record.mounts("otel-collector-sidecar")  # nothing to mount: no copy kept for it


def test_older_records_parse_as_before_without_an_endpoint() -> None:
    assert Status.parse(RECORD.to_annotation()) == RECORD
    assert RECORD.endpoint == ""
    assert not RECORD.env_only
    assert '"endpoint"' not in RECORD.to_annotation()  # the bytes of sidecar records are unchanged
