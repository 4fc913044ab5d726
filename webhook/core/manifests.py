"""Manual injection of Kubernetes YAML, like ``istioctl kube-inject``.

Finds every pod spec in a stream of documents (Pods, ``List`` items, and the pod templates
of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs), runs the same
:func:`~webhook.core.injection.inject_pod` the webhook runs, and writes the documents back in
order. Other kinds pass through unchanged.

Every input gives the output or one :class:`ManifestError` line, never a traceback: YAML
is read and written by :mod:`webhook.core.yamlbounds` (libyaml, a nesting limit, an alias
limit), and a pod spec whose fields have the wrong type is left as it is with a message
naming the field (:mod:`webhook.core.shape`). Output stays proportional to the input: each
pod spec grows by a bounded amount or is left alone (``too-large``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from webhook.core import names
from webhook.core.bounds import shown
from webhook.core.injection import inject_pod
from webhook.core.patch import apply_patch, make_patch
from webhook.core.resource import ANNOTATION_PREFIX as RESOURCE_PREFIX
from webhook.core.settings import InjectionSettings
from webhook.core.workload import Workload
from webhook.core.yamlbounds import YamlError, dump_documents, load_documents

TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


class ManifestError(ValueError):
    """The input is not YAML we can read; the message is one line."""


@dataclass
class InjectReport:
    """What happened to each pod spec, as lines for stderr."""

    messages: list[str] = field(default_factory=list)
    injected: int = 0
    skipped: int = 0


def inject_yaml(text: str, settings: InjectionSettings, namespace: str | None = None) -> tuple[str, InjectReport]:
    """Inject every pod spec in ``text``; returns the new YAML and a report.

    ``namespace`` overrides each object's own ``metadata.namespace`` (default ``default``),
    which matters for the system-namespace rule and the resource attributes."""
    try:
        documents = load_documents(text)
    except YamlError as err:
        raise ManifestError(str(err)) from None
    report = InjectReport()
    output = []
    for document in documents:
        if document is None:
            continue
        _inject_object(document, settings, namespace, report)
        output.append(document)
    try:
        rendered = dump_documents(output)
    except YamlError as err:
        raise ManifestError(str(err)) from None
    return rendered, report


def _inject_object(obj: Any, settings: InjectionSettings, namespace: str | None, report: InjectReport) -> None:
    if not isinstance(obj, dict):
        return
    kind = obj.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        for item in obj["items"]:
            _inject_object(item, settings, namespace, report)
        return
    raw_metadata = obj.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    name = shown(metadata.get("name") or metadata.get("generateName") or "?", 63)
    ns = namespace or metadata.get("namespace") or "default"
    if not isinstance(ns, str):
        ns = "default"
    label = f"{shown(kind, 63)}/{name}"
    if kind == "Pod":
        _inject_in_place(obj, obj, settings, namespace=str(ns), workload=None, label=label, report=report)
        return
    for template, workload in _templates(obj, kind, name):
        _warn_misplaced(metadata, template, label, report)
        _inject_in_place(template, None, settings, namespace=str(ns), workload=workload, label=label, report=report)


def _templates(obj: dict[str, Any], kind: Any, name: str) -> Iterator[tuple[dict[str, Any], Workload]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind in TEMPLATE_KINDS and isinstance(spec.get("template"), dict):
        yield spec["template"], Workload(kind, name)
    elif kind == "CronJob":
        job_template = spec.get("jobTemplate")
        job_spec = job_template.get("spec") if isinstance(job_template, dict) else None
        if isinstance(job_spec, dict) and isinstance(job_spec.get("template"), dict):
            yield job_spec["template"], Workload("CronJob", name)


def _inject_in_place(
    target: dict[str, Any],
    pod: dict[str, Any] | None,
    settings: InjectionSettings,
    *,
    namespace: str,
    workload: Workload | None,
    label: str,
    report: InjectReport,
) -> None:
    """Inject ``pod`` (or the pod template ``target``) and write the result into ``target``.

    What is written is the webhook's JSON patch applied to the input, as the apiserver
    applies it, by jsonpatch (an independent RFC 6902 implementation), not the mutated pod
    itself: so ``inject`` prints what the cluster would store, and every golden checks the
    patch the webhook sends as well as the pod. The server does not re-apply its patch:
    that would copy every pod once more on the admission path, and the apiserver applies
    it anyway."""
    as_pod = pod if pod is not None else {"metadata": target.get("metadata") or {}, "spec": target.get("spec") or {}}
    result = inject_pod(as_pod, settings, namespace=namespace, workload=workload)
    for warning in result.warnings:
        report.messages.append(f"{label}: {warning}")
    if not result.injected:
        report.skipped += 1
        return
    report.injected += 1
    stored = apply_patch(as_pod, make_patch(as_pod, result.pod))
    if pod is not None:
        target.clear()
        target.update(stored)
    else:
        target["metadata"] = stored["metadata"]
        target["spec"] = stored["spec"]


def _warn_misplaced(metadata: dict[str, Any], template: dict[str, Any], label: str, report: InjectReport) -> None:
    """Point out our labels and annotations on the workload instead of its pod template,
    the most common reason for "why was my pod not injected" (OTel Operator #665)."""
    template_meta = _mapping(template.get("metadata"))
    for field_name in ("labels", "annotations"):
        ours = {
            key
            for key in _mapping(metadata.get(field_name))
            if isinstance(key, str)
            and (key == names.TRACING_LABEL or key.startswith((names.ANNOTATION_PREFIX, RESOURCE_PREFIX)))
        }
        for key in sorted(ours - set(_mapping(template_meta.get(field_name)))):
            owner_kind = label.split("/", maxsplit=1)[0]
            report.messages.append(
                f"{label}: {field_name[:-1]} {shown(key)} is on the {owner_kind}, not on its pod template; "
                "only spec.template.metadata reaches the pods"
            )


def _mapping(value: object) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}
