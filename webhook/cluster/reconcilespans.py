"""The reconciler's span: one per reconcile of a namespace, with what it decided and why,
and links to the admissions that caused it.

:func:`traced_reconcile` wraps :meth:`webhook.cluster.reconciler.Reconciler.reconcile`
in a :func:`~webhook.telemetry.controllerspans.work_span` named ``reconcile namespace``,
with the attributes

* ``otel_injector.object``: ``namespace/<name>``, and ``k8s.namespace.name``;
* ``otel_injector.config_map`` and ``otel_injector.config_hash``: the copy and the source
  config it is reconciled against;
* ``otel_injector.decision`` / ``otel_injector.reason``: the plan carried out (``create``,
  ``update``, ``delete``, ``refuse``, ``wait``, ``none``, or ``skip`` when the namespace does
  not exist or is being deleted) and its one-line reason.

Every API call it makes is a client span under it (:class:`webhook.cluster.client.Kube`).
When the plan writes a copy because of pods that opted in by their own label, the span
links to each such pod's admission (at most
:data:`~webhook.telemetry.controllerspans.MAX_LINKS`), as recorded in its
``otel-injector.io/admission-trace`` annotation; a namespace labelled ``tracing=enabled``
acts because of its label, and gets no links.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry.trace import Link

from webhook.cluster.copies import Action, Plan, read_source
from webhook.cluster.objects import JSONDict, annotations_of, labels_of
from webhook.core import names
from webhook.telemetry.controllerspans import MAX_LINKS, add_links, admission_link, decide, work_span

if TYPE_CHECKING:
    from webhook.cluster.reconciler import Reconciler

SPAN_NAME = "reconcile namespace"
_WRITES = (Action.CREATE, Action.UPDATE)


def traced_reconcile(reconciler: Reconciler, namespace: str) -> Plan | None:
    """``reconciler.reconcile(namespace)`` in its span; returns (and raises) what it does."""
    source = reconciler.source
    attributes = {
        "otel_injector.object": f"namespace/{namespace}",
        "k8s.namespace.name": namespace,
        "otel_injector.config_map": reconciler.config_map,
        "otel_injector.config_hash": source.hash if source is not None else "",
    }
    with work_span(reconciler.kube.tracer, SPAN_NAME, attributes) as span:
        plan = reconciler.reconcile(namespace)
        if plan is None:
            decide(span, "skip", "namespace does not exist, is being deleted or is the injector's own")
            return None
        decide(span, plan.action.value, plan.reason)
        if plan.action in _WRITES and span.is_recording() and not _labelled(reconciler, namespace):
            add_links(span, admission_links(reconciler, namespace))
        return plan


SOURCE_SPAN_NAME = "reconcile collector config"


def traced_source_change(
    reconciler: Reconciler,
    handler: Callable[[JSONDict | None, JSONDict | None], None],
    old: JSONDict | None,
    new: JSONDict | None,
) -> None:
    """``handler(old, new)`` (the reconciler's source handler) in a span named
    :data:`SOURCE_SPAN_NAME`, deciding ``update`` (a new config: every namespace is queued),
    ``none`` (unchanged) or ``keep`` (missing: the copies are kept)."""
    attributes = {"otel_injector.object": f"configmap/{reconciler.namespace}/{reconciler.source_name}"}
    before = reconciler.source
    with work_span(reconciler.kube.tracer, SOURCE_SPAN_NAME, attributes) as span:
        handler(old, new)
        after = reconciler.source
        if read_source(new) is None:
            decide(span, "keep", "the source is missing or has no config.yaml; copies are kept as they are")
        elif after == before:
            decide(span, "none", "source unchanged")
        else:
            if after is not None:
                span.set_attribute("otel_injector.config_hash", after.hash)
            decide(span, "update", "source changed: every namespace is reconciled again")


def _labelled(reconciler: Reconciler, namespace: str) -> bool:
    obj = reconciler.namespaces.get("", namespace)
    return obj is not None and labels_of(obj).get(names.TRACING_LABEL) == names.TRACING_ENABLED


def admission_links(reconciler: Reconciler, namespace: str) -> list[Link]:
    """Links to the admissions of the opted-in pods of ``namespace`` in the pod cache."""
    links: list[Link] = []
    for pod in reconciler.pods.items():
        metadata = pod.get("metadata") or {}
        if metadata.get("namespace") != namespace:
            continue
        link = admission_link(
            annotations_of(pod).get(names.ADMISSION_TRACE_ANNOTATION), **{"k8s.pod.name": str(metadata.get("name"))}
        )
        if link is not None:
            links.append(link)
            if len(links) >= MAX_LINKS:
                break
    return links
