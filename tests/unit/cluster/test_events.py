"""The one Warning Event body the controllers record."""

from __future__ import annotations

from datetime import UTC, datetime

from webhook.cluster.events import EVENT_COMPONENT, warning_event


def test_a_warning_event_names_its_object_component_and_time() -> None:
    involved = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "cm"}
    moment = datetime(2026, 12, 1, 14, 5, 6, 789, tzinfo=UTC)
    event = warning_event(involved, reason="R", message="m", action="Detect", instance="x" * 200, now=moment)
    assert event["metadata"] == {"generateName": "cm.", "namespace": "shop"}
    assert event["involvedObject"] is involved
    assert (event["reason"], event["message"], event["type"], event["action"]) == ("R", "m", "Warning", "Detect")
    assert event["source"] == {"component": EVENT_COMPONENT}
    assert event["reportingComponent"] == EVENT_COMPONENT
    assert event["reportingInstance"] == "x" * 128
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-12-01T14:05:06Z"
    assert event["eventTime"] == "2026-12-01T14:05:06.000789Z"


def test_without_a_time_it_is_now() -> None:
    event = warning_event({"namespace": "shop", "name": "p"}, reason="R", message="m", action="A", instance="i")
    assert abs(datetime.fromisoformat(event["eventTime"]) - datetime.now(UTC)).total_seconds() < 60
