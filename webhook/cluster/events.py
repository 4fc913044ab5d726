"""The core/v1 Warning Events the controllers record (a ConfigMap not overwritten, pods
missing the sidecar): one body, so every Event of ours names the same component and
carries the same timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from webhook.cluster.objects import JSONDict

#: ``source.component`` and ``reportingComponent`` of every Event of ours.
EVENT_COMPONENT = "otel-injector"


def warning_event(
    involved: JSONDict,
    *,
    reason: str,
    message: str,
    action: str,
    instance: str,
    now: datetime | None = None,
) -> JSONDict:
    """A Warning Event about ``involved`` (its ``involvedObject``: ``namespace`` and
    ``name`` at least), reported by ``instance`` (cut to the API's 128 characters)."""
    moment = now or datetime.now(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved.get('name')}.", "namespace": involved.get("namespace")},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": action,
        "count": 1,
    }
