"""``otel-injector stale``: injected pods whose collector config or sidecar image is out of
date, grouped by the workload that owns them, and (only with ``--restart``) a rollout of
those workloads.

A pod is stale when its status annotation (``otel-injector.io/status``) records

* a ``configHash`` other than the current one, for pods that mount the shared ConfigMap
  (the current hash is ``--config-hash``, else the hash of ``config.yaml`` in the source
  ConfigMap ``settings.collector_source``, else the hash of ``collector_config_file``);
* an ``image`` other than the one it would get now: ``--image`` or the configured sidecar
  image, unless the pod chose its own with the ``otel-injector.io/image`` annotation.

Finished pods (Succeeded, Failed) and env-only pods (``sidecar-mode: none``, which have no
sidecar) are not listed. Pods are grouped by
:func:`webhook.core.workload.infer_workload` (a ReplicaSet's pods under their Deployment).

``--restart`` patches ``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]``
of each stale Deployment, StatefulSet and DaemonSet, as ``kubectl rollout restart`` does.
Bare pods, Jobs and ReplicaSets without a Deployment cannot be rolled; they are listed with
what to do instead.

Exit codes, for scripts: 0 nothing stale (or, with ``--restart``, every stale workload was
restarted); 3 stale pods remain that were not restarted (without ``--restart``: any stale
pod); 1 an API request failed; 2 bad usage or settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from webhook.core import names
from webhook.core.overrides import read_overrides
from webhook.core.settings import InjectionSettings
from webhook.core.status import Status
from webhook.core.workload import Workload, infer_workload

EXIT_STALE = 3
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: Workload kinds that roll when their pod template changes, and their API group.
RESTARTABLE = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1"}
_RESOURCE = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
_CANNOT = {
    None: "bare pod: cannot be restarted; delete and re-create it",
    "Job": "Job: cannot be restarted; the pods of its next run (or a re-created Job) get the new config",
    "ReplicaSet": "ReplicaSet without a Deployment: cannot be rolled; delete its pods to replace them",
}


@dataclass(frozen=True)
class StalePod:
    """One stale pod and why it is stale."""

    namespace: str
    name: str
    workload: Workload | None
    reasons: tuple[str, ...]


@dataclass
class StaleWorkload:
    """The stale pods of one workload (or one bare pod)."""

    namespace: str
    kind: str
    name: str
    pods: list[StalePod] = field(default_factory=list)
    restarted: bool | None = None  # None: not asked or not possible
    error: str = ""

    @property
    def restartable(self) -> bool:
        """Whether ``--restart`` can roll it."""
        return self.kind in RESTARTABLE

    @property
    def note(self) -> str:
        """What to do about it when it cannot be rolled."""
        if self.restartable:
            return ""
        return _CANNOT.get(None if self.kind == "Pod" else self.kind, f"{self.kind}: not restarted by this tool")


def stale_reasons(pod: Mapping[str, Any], *, current_hash: str, settings: InjectionSettings) -> list[str]:
    """Why an injected pod is stale; empty when it is current or was never injected.

    ``current_hash`` "" means unknown: only the image is compared. Pure."""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    raw = annotations.get(names.STATUS_ANNOTATION)
    if raw is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return []
    status = Status.parse(raw)
    if status is None:
        return ["status annotation is not a JSON object; injected by an unknown version"]
    if status.env_only:
        return []  # sidecar-mode none: no sidecar, so no config or image to be out of date
    reasons = []
    if current_hash and status.mounts(settings.config_map) and status.config_hash != current_hash:
        shown = status.config_hash or "none recorded"
        reasons.append(f"collector config {shown}, current is {current_hash}")
    app_names = [str(c.get("name", "")) for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    expected_image = read_overrides(annotations, settings, app_names)[0].image
    if status.image != expected_image:
        reasons.append(f"sidecar image {status.image or 'not recorded'}, current is {expected_image}")
    return reasons


def find_stale(pods: Iterable[Mapping[str, Any]], *, current_hash: str, settings: InjectionSettings) -> list[StalePod]:
    """The stale pods among ``pods``. Pure."""
    found = []
    for pod in pods:
        reasons = stale_reasons(pod, current_hash=current_hash, settings=settings)
        if reasons:
            metadata = pod.get("metadata") or {}
            found.append(
                StalePod(
                    namespace=str(metadata.get("namespace") or ""),
                    name=str(metadata.get("name") or ""),
                    workload=infer_workload(pod),
                    reasons=tuple(reasons),
                )
            )
    return found


def group_by_workload(stale: Iterable[StalePod]) -> list[StaleWorkload]:
    """Stale pods grouped by (namespace, workload); a bare pod is its own group. Sorted."""
    groups: dict[tuple[str, str, str], StaleWorkload] = {}
    for pod in stale:
        kind, name = (pod.workload.kind, pod.workload.name) if pod.workload else ("Pod", pod.name)
        key = (pod.namespace, kind, name)
        groups.setdefault(key, StaleWorkload(pod.namespace, kind, name)).pods.append(pod)
    for group in groups.values():
        group.pods.sort(key=lambda p: p.name)
    return [groups[k] for k in sorted(groups)]


def restart_patch(now: datetime | None = None) -> dict[str, Any]:
    """The merge patch ``kubectl rollout restart`` sends."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def exit_code(workloads: Sequence[StaleWorkload], *, restart: bool) -> int:
    """0, 3 or 1 as the module docstring says."""
    if not workloads:
        return 0
    if not restart:
        return EXIT_STALE
    if any(w.error for w in workloads):
        return 1
    return 0 if all(w.restarted for w in workloads) else EXIT_STALE


def render_text(workloads: Sequence[StaleWorkload], *, current_hash: str, image: str, restart: bool) -> str:
    """The human-readable report."""
    lines = []
    for w in workloads:
        head = f"{w.kind} {w.namespace}/{w.name}: {len(w.pods)} stale pod(s)"
        if w.restarted:
            head += "; restarted"
        elif w.error:
            head += f"; restart failed: {w.error}"
        elif w.restartable and not restart:
            head += "; roll it with --restart"
        elif not w.restartable:
            head += f"; {w.note}"
        lines.append(head)
        lines.extend(f"  {p.name}: {'; '.join(p.reasons)}" for p in w.pods)
    total = sum(len(w.pods) for w in workloads)
    hash_text = current_hash or "unknown"
    if workloads:
        lines.append(f"{total} stale pod(s) in {len(workloads)} workload(s) (config {hash_text}, image {image})")
    else:
        lines.append(f"no stale pods (config {hash_text}, image {image})")
    return "\n".join(lines) + "\n"


def render_json(workloads: Sequence[StaleWorkload], *, current_hash: str, image: str) -> str:
    """The ``-o json`` report."""
    document = {
        "configHash": current_hash,
        "image": image,
        "stalePods": sum(len(w.pods) for w in workloads),
        "workloads": [
            {
                "namespace": w.namespace,
                "kind": w.kind,
                "name": w.name,
                "restartable": w.restartable,
                "restarted": w.restarted,
                **({"error": w.error} if w.error else {}),
                **({"note": w.note} if w.note else {}),
                "pods": [{"name": p.name, "reasons": list(p.reasons)} for p in w.pods],
            }
            for w in workloads
        ],
    }
    return json.dumps(document, indent=2) + "\n"
