"""``inject_pod``: the one pure step from a pod to an injected pod.

Shared by the webhook and the ``inject`` CLI. No I/O, no clock, no globals: the same pod
and settings always give the same result, which is what makes golden files possible.
The input is never modified; the output has only additions (plus the merge into an
existing ``OTEL_RESOURCE_ATTRIBUTES``), so fields this code does not know about survive
untouched.

The output is copied on write, not deep-copied: each dict and list on the way to a change
(the pod, metadata, spec, the container list, each app container and its env) is a new
object, and everything else is shared with the input. Treat both as read-only, or copy
before changing either. Sharing is also what keeps the patch diff cheap: an unchanged
subtree is the same object on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook import __version__
from webhook.core import names
from webhook.core.appenv import PodIdentity, inject_env, pod_service_name
from webhook.core.bounds import (
    MAX_ANNOTATIONS_BYTES,
    MAX_INJECTED_POD_BYTES,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    PATCH_OP_OVERHEAD,
    Budget,
    OverBudget,
    annotations_size,
    cap,
    clip,
    json_size,
    may_exceed,
)
from webhook.core.decision import INJECT, Decision, Reason, decide
from webhook.core.overrides import Notice, PodOverrides, read_overrides
from webhook.core.resource import read_pod_resource
from webhook.core.settings import ENV_ONLY, InjectionMode, InjectionSettings
from webhook.core.shape import shape_problem
from webhook.core.sidecar import build_sidecar, build_volume
from webhook.core.status import Status
from webhook.core.workload import Workload, infer_workload

#: Workload kinds whose pods are meant to run to completion.
_RUN_TO_COMPLETION = frozenset({"Job", "CronJob"})
#: The decision of an env-only injection: same reason code, a message that says what was done.
ENV_ONLY_INJECTED = Decision(
    True, Reason.INJECTED, "otel-injector: OTEL_* env injected, no sidecar (sidecar-mode none)"
)


@dataclass(frozen=True)
class InjectionResult:
    """The outcome of :func:`inject_pod`.

    ``pod`` is the pod to admit (the input itself when skipped). ``notices`` are the
    fallbacks taken while injecting.
    """

    pod: Mapping[str, Any]
    decision: Decision
    mode: InjectionMode | None = None
    notices: tuple[Notice, ...] = ()
    env_added: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per skip or fallback, for the AdmissionResponse ``warnings``."""
        if not self.decision.inject:
            return (self.decision.message,)
        return tuple(f"otel-injector: {n.message}" for n in self.notices)

    @property
    def injected(self) -> bool:
        """Whether the pod was injected (the sidecar, or in mode ``none`` only the env)."""
        return self.decision.inject

    @property
    def reason(self) -> Reason:
        """The decision's reason code."""
        return self.decision.reason


def inject_pod(
    pod: Mapping[str, Any],
    settings: InjectionSettings,
    *,
    namespace: str,
    operation: str = "CREATE",
    workload: Workload | None = None,
) -> InjectionResult:
    """Decide, and if the pod qualifies, add the sidecar, its volume, the app env and the
    status annotation; for an env-only pod (``sidecar-mode: none``, :mod:`webhook.core.endpoint`)
    only the env and the status annotation.

    ``workload`` names the owner when the caller knows it (the CLI injecting a Deployment's
    template); otherwise it is inferred from the pod. Raises nothing, whatever the pod: a
    field of the wrong type leaves the pod as it is with the reason ``malformed`` (see
    :mod:`webhook.core.shape`), a pod too large to store with the reason ``too-large``.
    """
    problem = shape_problem(pod)
    if problem is not None:
        return InjectionResult(pod=pod, decision=_skip(Reason.MALFORMED, problem))
    decision = decide(pod, namespace=namespace, operation=operation, settings=settings)
    if not decision.inject:
        return InjectionResult(pod=pod, decision=decision)
    return mutate(pod, settings, namespace=namespace, workload=workload, decision=decision)


def mutate(
    pod: Mapping[str, Any],
    settings: InjectionSettings,
    *,
    namespace: str,
    workload: Workload | None = None,
    decision: Decision = INJECT,
    pod_bytes: int | None = None,
) -> InjectionResult:
    """The mutation alone, for a well-shaped pod (:mod:`webhook.core.shape`) that
    :func:`~webhook.core.decision.decide` said to inject.

    Kept apart from :func:`inject_pod` so the webhook can time and trace the decision and
    the mutation as separate steps; everyone else should call :func:`inject_pod`.

    Bounded output (see :mod:`webhook.core.bounds`): names longer than Kubernetes allows
    are cut before they are copied, with a ``capped-value`` notice; and if the injected pod
    would be larger than :data:`~webhook.core.bounds.MAX_INJECTED_POD_BYTES` (``pod_bytes``
    is the pod's JSON size, or an upper bound of it such as the request's size; measured
    when not given), or its annotations larger than the apiserver accepts, the pod is
    returned as it is with the reason ``too-large``.
    """
    try:
        return _mutate(pod, settings, namespace=namespace, workload=workload, decision=decision, pod_bytes=pod_bytes)
    except OverBudget as over:
        why = f"too large: with it the pod would be over {over.size:,} bytes, more than the {over.limit:,} "
        why += "the apiserver can store" if over.limit == MAX_INJECTED_POD_BYTES else "bytes of annotations allowed"
        return InjectionResult(pod=pod, decision=_skip(Reason.TOO_LARGE, why))


def _skip(reason: Reason, why: str) -> Decision:
    return Decision(False, reason, f"otel-injector: sidecar not injected: {why}")


def _mutate(
    pod: Mapping[str, Any],
    settings: InjectionSettings,
    *,
    namespace: str,
    workload: Workload | None,
    decision: Decision,
    pod_bytes: int | None,
) -> InjectionResult:
    size = json_size(pod) if pod_bytes is None else pod_bytes
    budget = Budget(size)
    new = dict(pod)
    metadata = _own(new, "metadata")
    spec = _own(new, "spec")
    if spec.get("containers"):
        # inject_env changes each container and its env list in place: give it copies.
        spec["containers"] = [_own_container(c) for c in spec["containers"]]
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    notices: list[Notice] = []

    app_containers: list[dict[str, Any]] = spec.get("containers") or []
    # Weigh only what could reach a limit; a typical pod is far from both.
    weigh = may_exceed(size, len(app_containers), MAX_INJECTED_POD_BYTES)
    weigh_annotations = may_exceed(size, len(app_containers), MAX_ANNOTATIONS_BYTES)
    existing_annotations = annotations_size(annotations.items()) if weigh_annotations else 0
    if existing_annotations > MAX_ANNOTATIONS_BYTES:  # before any work: no status fits
        raise OverBudget(existing_annotations, MAX_ANNOTATIONS_BYTES)

    app_names = [c.get("name") or "" for c in app_containers]
    overrides, override_notices = read_overrides(annotations, settings, app_names)
    notices.extend(override_notices)

    owner = workload if workload is not None else infer_workload(pod)
    if owner is not None and len(owner.name) > MAX_NAME_LENGTH:
        notices.append(_capped(f"the {clip(owner.kind, MAX_LABEL_LENGTH)} name", len(owner.name), MAX_NAME_LENGTH))
        owner = Workload(owner.kind, cap(owner.name, MAX_NAME_LENGTH))
    resource, resource_notices = read_pod_resource(metadata, labels, annotations, owner)
    notices.extend(resource_notices)
    # validated: at most 255 characters; then resource.opentelemetry.io/service.name
    service_name = overrides.service_name or resource.service_name
    if service_name is None:
        service_name = pod_service_name(None, labels)
        if service_name is not None and len(service_name) > MAX_LABEL_LENGTH:
            notices.append(_capped("the label that names the service", len(service_name), MAX_LABEL_LENGTH))
            service_name = cap(service_name, MAX_LABEL_LENGTH)
    if len(namespace) > MAX_LABEL_LENGTH:
        notices.append(_capped("the namespace", len(namespace), MAX_LABEL_LENGTH))
        namespace = cap(namespace, MAX_LABEL_LENGTH)
    identity = PodIdentity(namespace=namespace, workload=owner, service_name=service_name, resource=resource)

    job_kind = identity.workload.kind if identity.workload is not None else ""
    if overrides.endpoint is None and overrides.sidecar_mode == "container" and job_kind in _RUN_TO_COMPLETION:
        # Still injected (tracing never blocks a pod), but the user must hear it: a plain
        # container never exits, so the pod never completes and neither does the Job.
        notices.append(
            Notice(
                "container-mode-job",
                f"sidecar-mode container on a {job_kind}'s pod: the collector container never exits, so the "
                "pod never completes; use sidecar-mode native (Kubernetes 1.29+)",
            )
        )
    selected = set(overrides.containers) if overrides.containers is not None else set(app_names)
    env_added: dict[str, tuple[str, ...]] = {}
    long_names = 0
    for container, name in zip(app_containers, app_names, strict=True):
        if name not in selected:
            continue
        copied_name = name
        if len(name) > MAX_LABEL_LENGTH:
            long_names += 1
            copied_name = cap(name, MAX_LABEL_LENGTH)
        before = list(container.get("env") or ()) if weigh else []  # inject_env changes it in place
        added, env_notices = inject_env(container, identity, settings, name=copied_name, endpoint=overrides.endpoint)
        notices.extend(env_notices)
        if added:
            env_added[copied_name] = tuple(added)
            if weigh:
                budget.spend(_growth(before, container["env"]))
    if long_names:
        notices.append(_capped_names(long_names, MAX_LABEL_LENGTH))

    status = status_annotation(overrides, settings, env_added)
    with_status = existing_annotations + len(names.STATUS_ANNOTATION) + len(status)
    if overrides.endpoint is not None:  # env only: no sidecar, no volume
        if weigh:
            budget.spend(len(status) + PATCH_OP_OVERHEAD)
        if weigh_annotations and with_status > MAX_ANNOTATIONS_BYTES:
            raise OverBudget(with_status, MAX_ANNOTATIONS_BYTES)
        metadata["annotations"] = {**annotations, names.STATUS_ANNOTATION: status}
        return InjectionResult(
            pod=new,
            decision=ENV_ONLY_INJECTED if decision == INJECT else decision,
            mode=ENV_ONLY,
            notices=tuple(notices),
            env_added=env_added,
        )
    taken = {
        p.get("name") for c in (*app_containers, *(spec.get("initContainers") or [])) for p in c.get("ports") or []
    }
    sidecar = build_sidecar(overrides, settings, taken_port_names={t for t in taken if isinstance(t, str)})
    volume = build_volume(overrides)
    if weigh:
        budget.spend(json_size(sidecar) + json_size(volume) + len(status) + 3 * PATCH_OP_OVERHEAD)
    if weigh_annotations and with_status > MAX_ANNOTATIONS_BYTES:
        raise OverBudget(with_status, MAX_ANNOTATIONS_BYTES)
    if overrides.sidecar_mode == "native":
        init = list(spec.get("initContainers") or [])
        init.insert(_native_sidecar_position(init), sidecar)
        spec["initContainers"] = init
    else:
        spec["containers"] = [*(spec.get("containers") or []), sidecar]
    spec["volumes"] = [*(spec.get("volumes") or []), volume]

    metadata["annotations"] = {**annotations, names.STATUS_ANNOTATION: status}
    return InjectionResult(
        pod=new,
        decision=decision,
        mode=overrides.sidecar_mode,
        notices=tuple(notices),
        env_added=env_added,
    )


def _capped(what: str, length: int, limit: int) -> Notice:
    return Notice(
        "capped-value",
        f"{what} ({length:,} characters) is longer than Kubernetes allows ({limit}); "
        f"only its first {limit} characters are copied",
    )


def _capped_names(count: int, limit: int) -> Notice:
    return Notice(
        "capped-value",
        f"{count:,} container name(s) longer than Kubernetes allows ({limit}); "
        f"only their first {limit} characters are copied",
    )


def _growth(before: list[Any], after: list[Any]) -> int:
    """JSON bytes an env list grew by, plus a patch operation's overhead for each change."""
    old = {id(item) for item in before}
    new = {id(item) for item in after}
    added = [item for item in after if id(item) not in old]
    removed = [item for item in before if id(item) not in new]
    return json_size(added) - json_size(removed) + PATCH_OP_OVERHEAD * len(added)


def _own(parent: dict[str, Any], key: str) -> Any:
    """``parent[key]`` copied one level (``{}`` when missing or null: null is absent)."""
    value = parent[key] = dict(parent.get(key) or {})
    return value


def _own_container(container: dict[str, Any]) -> dict[str, Any]:
    copied = dict(container)
    if isinstance(copied.get("env"), list):
        copied["env"] = list(copied["env"])
    return copied


def _native_sidecar_position(init_containers: list[Any]) -> int:
    """After the pod's own native sidecars (a mesh proxy our exporter may need to reach the
    network), before its regular init containers (so they can already send telemetry).
    """
    position = 0
    for index, container in enumerate(init_containers):
        if isinstance(container, Mapping) and container.get("restartPolicy") == "Always":
            position = index + 1
    return position


def status_annotation(
    overrides: PodOverrides,
    settings: InjectionSettings,
    env_added: Mapping[str, tuple[str, ...]],
) -> str:
    """The ``otel-injector.io/status`` value (:class:`~webhook.core.status.Status`): what
    was added and with which version, config and image, so ``stale`` can compare it later.
    An env-only pod records the mode ``none`` and its endpoint, and no config or image.
    """
    env = tuple(sorted({var for vars_ in env_added.values() for var in vars_}))
    if overrides.endpoint is not None:
        return Status(
            version=__version__,
            mode=ENV_ONLY,
            endpoint=overrides.endpoint.recorded,
            env=env,
            env_containers=tuple(sorted(env_added)),
        ).to_annotation()
    return Status(
        version=__version__,
        config_hash=settings.config_hash,
        config_map=overrides.config_map,
        image=overrides.image,
        mode=overrides.sidecar_mode,
        sidecars=(names.CONTAINER_NAME,),
        volumes=(names.VOLUME_NAME,),
        # The union of names and the containers that got any keeps the record small on
        # pods with many containers (annotations share a 256 KiB budget).
        env=env,
        env_containers=tuple(sorted(env_added)),
    ).to_annotation()
