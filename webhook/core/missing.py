"""Whether a running pod is missing the sidecar the webhook would have given it. Pure.

A pod can be created without injection although the rules would inject it: the webhook
was down (``failurePolicy: Ignore``), the pod was created before its namespace was
labelled, or a certificate gap made the apiserver's call fail. Such a pod is *missing*
when all of these hold:

* it is in the webhook's scope: its namespace is labelled ``tracing=enabled``, or the pod
  itself is (the chart's two webhook entries);
* it has not finished (Succeeded, Failed) and is not being deleted;
* :func:`webhook.core.decision.decide`, the very function the webhook calls, asked about
  this pod as a CREATE, says *inject*. A pod that already has the sidecar or the status
  record answers ``already-injected``; one the rules skip (``tracing=disabled``,
  ``hostNetwork``, a port conflict, a system namespace...) is not missing, it was skipped.

The one rule not re-checked is ``too-large`` (the injected pod would exceed what the
apiserver stores): it needs the whole pod, and the informer view keeps a trimmed copy
(:func:`webhook.cluster.missing.slim_pod_for_rules`). Such a pod, over about 1.5 MiB, is
reported as missing; the restart budget (:mod:`webhook.core.restartbudget`) keeps a repair
of it from repeating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import names
from webhook.core.decision import decide
from webhook.core.settings import InjectionSettings


@dataclass(frozen=True)
class Missing:
    """Why a pod should have the sidecar and has not: ``scope`` says why the webhook would
    have been called, ``reason`` is the decision's reason code (``injected``: the rules
    would inject it now), ``message`` the one line shown to users."""

    scope: str
    reason: str
    message: str


def webhook_scope(pod: Mapping[str, Any], namespace_labels: Mapping[str, str]) -> str:
    """Why the webhook is called for ``pod`` ("" when it is not), as the chart registers it:
    the namespace entry (namespace labelled ``tracing=enabled``), else the object entry
    (the pod labelled so)."""
    enabled = names.TRACING_ENABLED
    if namespace_labels.get(names.TRACING_LABEL) == enabled:
        return f"namespace labelled {names.TRACING_LABEL}={enabled}"
    labels = _mapping(_mapping(pod.get("metadata")).get("labels"))
    if labels.get(names.TRACING_LABEL) == enabled:
        return f"pod labelled {names.TRACING_LABEL}={enabled}"
    return ""


def missing_sidecar(
    pod: Mapping[str, Any], *, namespace_labels: Mapping[str, str], settings: InjectionSettings
) -> Missing | None:
    """The :class:`Missing` verdict for a running pod, or ``None`` when it is not missing
    the sidecar (out of scope, finished, being deleted, injected, or skipped by a rule)."""
    metadata = _mapping(pod.get("metadata"))
    if metadata.get("deletionTimestamp") or _mapping(pod.get("status")).get("phase") in ("Succeeded", "Failed"):
        return None
    scope = webhook_scope(pod, namespace_labels)
    if not scope:
        return None
    namespace = str(metadata.get("namespace") or "")
    decision = decide(pod, namespace=namespace, operation="CREATE", settings=settings)
    if not decision.inject:
        return None
    return Missing(
        scope=scope,
        reason=decision.reason.value,
        message=f"no {names.CONTAINER_NAME} sidecar, but the rules inject it ({scope})",
    )


def opted_in_to_restart(*annotation_sets: Mapping[str, str]) -> bool:
    """Whether any of the annotation sets (the pod's, its workload's, its namespace's)
    carries ``otel-injector.io/auto-restart: "true"``."""
    return any(str(a.get(names.AUTO_RESTART_ANNOTATION, "")).strip().lower() == "true" for a in annotation_sets)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
