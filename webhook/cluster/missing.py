"""The leader's pass over every pod: pods missing the sidecar, and out-of-date pods of
workloads that asked for ``otel-injector.io/auto-restart``.

What it reads: an informer over all pods (:class:`~webhook.cluster.informer.Informer`,
trimmed by :func:`webhook.cluster.podview.slim_pod_for_rules` to what the rules read) and the reconciler's
namespace informer (labels and annotations). The rules are the webhook's own:
:func:`webhook.core.missing.missing_sidecar` calls :func:`webhook.core.decision.decide`,
and out of date is :func:`webhook.cluster.stale.stale_reasons`, the same as
``otel-injector stale``.

What a pass does (every ``missing_pass_seconds``, leader only, once the caches synced):

* sets ``otel_injector_pods_missing_sidecar{namespace}``;
* records a Warning Event ``SidecarMissing`` on the owning workload (a Deployment,
  StatefulSet, DaemonSet, Job, or the bare pod) when its count of such pods changes;
* with ``repair_missing_sidecars``, asks the :class:`~webhook.cluster.restarts.Restarter`
  to roll the owning Deployment, StatefulSet or DaemonSet; Jobs and bare pods are only
  reported (log line and Event);
* asks it to roll each workload whose pods are out of date (config hash or sidecar
  image) when the pod (its template), the workload or its namespace carries
  ``otel-injector.io/auto-restart: "true"``;
* tells it which workloads are healthy, which resets their cool-down.

Owner lookups are API calls (:class:`~webhook.cluster.owners.Owners`, cached); a pass
makes at most :data:`LOOKUPS_PER_PASS` of them, so a config change over thousands of
workloads spreads its lookups over several passes instead of a burst. A follower keeps
its informer warm and exports no gauge series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from webhook.cluster.client import ApiError, Kube
from webhook.cluster.informer import Informer
from webhook.cluster.objects import JSONDict, annotations_of, labels_of
from webhook.cluster.owners import Owner, Owners
from webhook.cluster.paths import api_path
from webhook.cluster.podview import slim_pod_for_rules
from webhook.cluster.restarts import Restarter, RestartRequest
from webhook.cluster.stale import StalePod, StaleWorkload, group_by_workload, stale_reasons
from webhook.core import names
from webhook.core.missing import Missing, missing_sidecar, opted_in_to_restart
from webhook.core.settings import InjectionSettings
from webhook.core.workload import Workload, infer_workload
from webhook.telemetry.repairmetrics import RepairMetrics

log = logging.getLogger("webhook.cluster.missing")

#: Owner lookups (GETs, cache misses only) one pass may make.
LOOKUPS_PER_PASS = 64
EVENT_REASON = "SidecarMissing"
EVENT_COMPONENT = "otel-injector"


def find_missing(
    pods: Iterable[Mapping[str, Any]], *, namespace_labels: Mapping[str, Mapping[str, str]], settings: InjectionSettings
) -> list[StalePod]:
    """The pods missing the sidecar, each with its reason. Pure."""
    found = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        verdict = missing_sidecar(pod, namespace_labels=namespace_labels.get(namespace, {}), settings=settings)
        if verdict is not None:
            found.append(StalePod(namespace, str(metadata.get("name") or ""), infer_workload(pod), (verdict.message,)))
    return found


def outdated_reason(reasons: Iterable[str]) -> str:
    """``config-outdated`` or ``image-outdated`` from :func:`stale_reasons`' lines."""
    return "config-outdated" if any(r.startswith("collector config") for r in reasons) else "image-outdated"


def sidecar_missing_event(owner: Owner, message: str, *, instance: str, now: datetime | None = None) -> JSONDict:
    """A core/v1 Warning Event ``SidecarMissing`` on ``owner``."""
    moment = now or datetime.now(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{owner.name}.", "namespace": owner.namespace},
        "involvedObject": {
            "apiVersion": owner.api_version,
            "kind": owner.kind,
            "namespace": owner.namespace,
            "name": owner.name,
            **({"uid": owner.uid} if owner.uid else {}),
        },
        "reason": EVENT_REASON,
        "message": message[:1024],
        "type": "Warning",
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": "Detect",
        "count": 1,
    }


@dataclass(frozen=True)
class _Verdicts:
    """One pod's verdicts and what they were computed from (see ``SidecarWatch._verdicts``)."""

    version: str
    tracing: str | None
    settings: InjectionSettings
    missing: Missing | None
    stale: tuple[str, ...]
    workload: Workload | None


@dataclass
class PassResult:
    """What one pass found and asked for (returned for tests and the span)."""

    missing: list[StaleWorkload] = field(default_factory=list)
    outdated: list[StaleWorkload] = field(default_factory=list)
    requests: list[RestartRequest] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)  # not rollable: Jobs, bare pods, other kinds


class SidecarWatch:
    """The pass of the module docstring, in its own thread."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespaces: Informer,
        injection: Callable[[], InjectionSettings],
        restarter: Restarter,
        owners: Owners,
        metrics: RepairMetrics,
        is_leader: Callable[[], bool],
        repair: bool,
        pass_seconds: float,
        instance: str = EVENT_COMPONENT,
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.injection = injection
        self.restarter = restarter
        self.owners = owners
        self.metrics = metrics
        self.is_leader = is_leader
        self.repair = repair
        self.pass_seconds = pass_seconds
        self.instance = instance
        self.pods = Informer(
            kube, api_path("v1", "pods"), name="all-pods", on_change=lambda old, new: None, transform=slim_pod_for_rules
        )
        self._reported: dict[str, int] = {}  # owner key -> missing pods in its last Event
        self._memo: dict[tuple[str, str], _Verdicts] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the pod informer and the pass thread (daemon threads)."""
        self.pods.start()
        self._thread = threading.Thread(target=self._run, name="sidecar-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both; bounded."""
        self._stop.set()
        self.pods.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.pass_seconds):
            try:
                self.run_pass()
            except Exception:
                log.exception("pass over pods missing the sidecar crashed; next pass in %.0fs", self.pass_seconds)

    def run_pass(self) -> PassResult | None:
        """One pass; ``None`` when this process does not lead or the caches are not synced."""
        if not self.is_leader():
            self.metrics.set_missing({})
            self._reported.clear()
            return None
        if not (self.pods.synced.is_set() and self.namespaces.synced.is_set()):
            return None
        # The controllers' tracer (webhook.compose): exported, and its API calls are client spans.
        with self.kube.tracer.start_as_current_span("otel-injector missing-sidecar pass") as span:
            started = time.process_time()
            result = self._pass()
            span.set_attributes(
                {
                    "otel_injector.object": "pods",
                    "otel_injector.decision": "restart" if result.requests else "none",
                    "otel_injector.reason": f"{sum(len(w.pods) for w in result.missing)} missing, "
                    f"{sum(len(w.pods) for w in result.outdated)} out of date",
                    "otel_injector.pass_cpu_seconds": time.process_time() - started,
                }
            )
        return result

    def _pass(self) -> PassResult:
        namespaces = self.namespaces.items()
        ns_labels = {str((n.get("metadata") or {}).get("name")): dict(labels_of(n)) for n in namespaces}
        ns_annotations = {str((n.get("metadata") or {}).get("name")): dict(annotations_of(n)) for n in namespaces}
        settings = self.injection()
        pods = self.pods.items()
        by_name = {(str(p["metadata"].get("namespace")), str(p["metadata"].get("name"))): p for p in pods}
        missing, stale, healthy = [], [], set()
        memo: dict[tuple[str, str], _Verdicts] = {}
        for key, pod in by_name.items():
            verdicts = self._verdicts(key, pod, ns_labels.get(key[0], {}), settings)
            memo[key] = verdicts
            if verdicts.missing is not None:
                missing.append(StalePod(key[0], key[1], verdicts.workload, (verdicts.missing.message,)))
            if verdicts.stale:
                stale.append(StalePod(key[0], key[1], verdicts.workload, verdicts.stale))
            if verdicts.workload is not None:
                healthy.add(f"{key[0]}/{verdicts.workload.kind}/{verdicts.workload.name}")
        self._memo = memo  # pods gone since the last pass drop out
        result = PassResult(missing=group_by_workload(missing), outdated=group_by_workload(stale))
        counts = {
            ns: 0
            for ns, labels in ns_labels.items()
            if labels.get(names.TRACING_LABEL) == names.TRACING_ENABLED and ns not in settings.excluded_namespaces
        }
        for group in result.missing:
            counts[group.namespace] = counts.get(group.namespace, 0) + len(group.pods)
        self.metrics.set_missing(counts)

        lookups = [0]
        troubled: set[str] = set()
        reported: dict[str, int] = {}
        for group in result.missing:
            owner = self._owner(group, by_name, lookups)
            if owner is None:
                continue
            troubled.add(owner.key)
            reported[owner.key] = len(group.pods)
            detail = f"{len(group.pods)} pod(s) without the {names.CONTAINER_NAME} sidecar: " + "; ".join(
                f"{p.name}: {p.reasons[0]}" for p in group.pods[:5]
            )
            if self._reported.get(owner.key) != len(group.pods):
                self._event(owner, detail, rollable=owner.rollable)
            if not owner.rollable:
                result.reported.append(owner.key)
            elif self.repair:
                result.requests.append(RestartRequest(owner, "missing-sidecar", detail, len(group.pods)))
        self._reported = reported

        for group in result.outdated:
            first = by_name.get((group.namespace, group.pods[0].name))
            pod_annotations = annotations_of(first)
            owner = self._owner(group, by_name, lookups)
            if owner is None:
                continue
            troubled.add(owner.key)
            if owner.rollable and opted_in_to_restart(
                pod_annotations, owner.annotations, ns_annotations.get(group.namespace, {})
            ):
                reason = outdated_reason(r for p in group.pods for r in p.reasons)
                detail = (
                    f"{len(group.pods)} pod(s) out of date: {group.pods[0].name}: {'; '.join(group.pods[0].reasons)}"
                )
                result.requests.append(RestartRequest(owner, reason, detail, len(group.pods)))
        self.restarter.update(result.requests)
        self.restarter.healthy(sorted(healthy - troubled))
        return result

    def _verdicts(
        self, key: tuple[str, str], pod: JSONDict, namespace_labels: Mapping[str, str], settings: InjectionSettings
    ) -> _Verdicts:
        """The rules' verdicts on one pod, from the last pass when nothing they read has
        changed: the pod (its resourceVersion), its namespace's ``tracing`` label, or the
        settings (replaced whole on a config change, so identity is enough). A pass over
        unchanged pods is then a dictionary lookup each (bench/perf/missingpass.py)."""
        version = str(pod["metadata"].get("resourceVersion") or "")
        tracing = namespace_labels.get(names.TRACING_LABEL)
        known = self._memo.get(key)
        if known is not None and known.version == version and known.tracing == tracing and known.settings is settings:
            return known
        return _Verdicts(
            version=version,
            tracing=tracing,
            settings=settings,
            missing=missing_sidecar(pod, namespace_labels=namespace_labels, settings=settings),
            stale=tuple(stale_reasons(pod, current_hash=settings.config_hash, settings=settings)),
            workload=infer_workload(pod),
        )

    def _owner(
        self, group: StaleWorkload, by_name: Mapping[tuple[str, str], JSONDict], lookups: list[int]
    ) -> Owner | None:
        """The owner of a group's pods; ``None`` when this pass has used its lookups."""
        pod = by_name.get((group.namespace, group.pods[0].name))
        if pod is None:
            return None
        known = self.owners.cached_of_pod(pod)
        if known is not None:
            return known
        if lookups[0] >= LOOKUPS_PER_PASS:
            return None  # the next pass gets to it
        lookups[0] += 1
        try:
            return self.owners.of_pod(pod)
        except ApiError as err:
            log.warning("cannot find the owner of %s/%s: %s", group.namespace, group.pods[0].name, err)
            return None

    def _event(self, owner: Owner, detail: str, *, rollable: bool) -> None:
        if not rollable:
            what = "a bare pod" if owner.kind == "Pod" else f"a {owner.kind}"
            detail += f". Not repaired: {what} is never restarted by otel-injector; re-create it"
        elif not self.repair:
            detail += ". Roll it to inject (or set repair.missingSidecars.enabled)"
        log.warning("%s: %s", owner.key, detail, extra={"workload": owner.key, "reason": EVENT_REASON})
        try:
            self.kube.create(
                api_path("v1", "events", owner.namespace), sidecar_missing_event(owner, detail, instance=self.instance)
            )
        except ApiError as err:
            log.warning("could not record an Event on %s: %s", owner.key, err)
