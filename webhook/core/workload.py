"""Which workload owns a pod, worked out from the pod alone (no API calls).

Used for ``OTEL_SERVICE_NAME`` and the ``k8s.<kind>.name`` resource attributes. A pod made
by a controller carries a controller ownerReference when it reaches admission, so the
owner is known without a lookup; a ReplicaSet is mapped to its Deployment through the
``pod-template-hash`` label the Deployment controller stamps on both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The CronJob controller names its Jobs "<cronjob>-<scheduled time in minutes>".
_CRONJOB_JOB = re.compile(r"^(?P<cronjob>.+)-(?P<minutes>[0-9]{8,})$")
_RESOURCE_KEY = {
    "Deployment": "k8s.deployment.name",
    "ReplicaSet": "k8s.replicaset.name",
    "StatefulSet": "k8s.statefulset.name",
    "DaemonSet": "k8s.daemonset.name",
    "Job": "k8s.job.name",
    "CronJob": "k8s.cronjob.name",
}


@dataclass(frozen=True)
class Workload:
    """A workload by kind and name, e.g. ``Workload("Deployment", "checkout")``."""

    kind: str
    name: str

    def resource_attributes(self) -> list[tuple[str, str]]:
        """The OpenTelemetry ``k8s.*`` attributes for this workload; for a CronJob's Job,
        both the job and the cronjob name.
        """
        if self.kind == "Job":
            match = _CRONJOB_JOB.match(self.name)
            attrs = [("k8s.job.name", self.name)]
            if match:
                attrs.append(("k8s.cronjob.name", match["cronjob"]))
            return attrs
        key = _RESOURCE_KEY.get(self.kind)
        return [(key, self.name)] if key else []

    @property
    def service_name(self) -> str:
        """The stable name to use as a service name: a CronJob's Jobs share their CronJob's."""
        if self.kind == "Job":
            match = _CRONJOB_JOB.match(self.name)
            if match:
                return match["cronjob"]
        return self.name


def infer_workload(pod: Mapping[str, Any]) -> Workload | None:
    """The owning workload of ``pod``, or ``None`` for a bare pod.

    Prefers the controller ownerReference; falls back to the naming conventions of the
    built-in controllers (``generateName`` plus ``pod-template-hash``, the job-name label).
    """
    metadata = _mapping(pod.get("metadata"))
    labels = _mapping(metadata.get("labels"))
    raw_owners = metadata.get("ownerReferences")
    owners = [o for o in raw_owners if isinstance(o, Mapping)] if isinstance(raw_owners, list) else []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    raw_hash = labels.get("pod-template-hash")
    template_hash = raw_hash if isinstance(raw_hash, str) else None
    if owner and isinstance(owner.get("kind"), str) and isinstance(owner.get("name"), str):
        kind, name = owner["kind"], owner["name"]
        if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
            return Workload("Deployment", name[: -len(template_hash) - 1])
        return Workload(kind, name)
    generate_name = metadata.get("generateName")
    if isinstance(generate_name, str) and template_hash:
        suffix = f"-{template_hash}-"
        if generate_name.endswith(suffix) and len(generate_name) > len(suffix):
            return Workload("Deployment", generate_name[: -len(suffix)])
    job_name = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    if isinstance(job_name, str) and job_name:
        return Workload("Job", job_name)
    return None


def pod_display_name(pod: Mapping[str, Any]) -> str:
    """The pod's name, or its ``generateName`` while the apiserver has not named it yet."""
    metadata = _mapping(pod.get("metadata"))
    name = metadata.get("name") or metadata.get("generateName") or ""
    return str(name)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
