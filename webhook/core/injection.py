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
from webhook.core.decision import INJECT, Decision, Reason, decide
from webhook.core.overrides import Notice, PodOverrides, read_overrides
from webhook.core.settings import InjectionSettings, SidecarMode
from webhook.core.sidecar import build_sidecar, build_volume
from webhook.core.status import Status
from webhook.core.workload import Workload, infer_workload


@dataclass(frozen=True)
class InjectionResult:
    """The outcome of :func:`inject_pod`.

    ``pod`` is the pod to admit (the input itself when skipped). ``notices`` are the
    fallbacks taken while injecting.
    """

    pod: Mapping[str, Any]
    decision: Decision
    mode: SidecarMode | None = None
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
        """Whether the sidecar was added."""
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
    status annotation.

    ``workload`` names the owner when the caller knows it (the CLI injecting a Deployment's
    template); otherwise it is inferred from the pod. Raises nothing for well-typed pods;
    malformed shapes (say, ``env`` that is not a list) are skipped container by container
    with a warning.
    """
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
) -> InjectionResult:
    """The mutation alone, for a pod that :func:`~webhook.core.decision.decide` said to inject.

    Kept apart from :func:`inject_pod` so the webhook can time and trace the decision and
    the mutation as separate steps; everyone else should call :func:`inject_pod`.
    """
    new = dict(pod)
    metadata = _own(new, "metadata")
    spec = _own(new, "spec")
    if isinstance(spec.get("containers"), list):
        # inject_env changes each container and its env list in place: give it copies.
        spec["containers"] = [_own_container(c) for c in spec["containers"]]
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}

    app_containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    app_names = [str(c.get("name", "")) for c in app_containers]
    overrides, notices = read_overrides(annotations, settings, app_names)

    identity = PodIdentity(
        namespace=namespace,
        workload=workload if workload is not None else infer_workload(pod),
        service_name=pod_service_name(overrides.service_name, labels),
    )
    selected = set(overrides.containers) if overrides.containers is not None else set(app_names)
    env_added: dict[str, tuple[str, ...]] = {}
    for container in app_containers:
        name = str(container.get("name", ""))
        if name not in selected:
            continue
        if not isinstance(container.get("env", []), list):
            notices.append(Notice("env-not-list", f"container {name}: env is not a list; no OTEL_* variables added"))
            continue
        added, env_notices = inject_env(container, identity, settings)
        notices.extend(env_notices)
        if added:
            env_added[name] = tuple(added)

    taken = {
        p.get("name")
        for c in (*app_containers, *(spec.get("initContainers") or []))
        if isinstance(c, dict)
        for p in c.get("ports") or []
        if isinstance(p, dict)
    }
    sidecar = build_sidecar(overrides, settings, taken_port_names={t for t in taken if isinstance(t, str)})
    if overrides.sidecar_mode == "native":
        init = list(spec.get("initContainers") or [])
        init.insert(_native_sidecar_position(init), sidecar)
        spec["initContainers"] = init
    else:
        spec["containers"] = [*(spec.get("containers") or []), sidecar]
    spec["volumes"] = [*(spec.get("volumes") or []), build_volume(overrides)]

    metadata["annotations"] = {
        **annotations,
        names.STATUS_ANNOTATION: status_annotation(overrides, settings, env_added),
    }
    return InjectionResult(
        pod=new,
        decision=decision,
        mode=overrides.sidecar_mode,
        notices=tuple(notices),
        env_added=env_added,
    )


def _own(parent: dict[str, Any], key: str) -> Any:
    """``parent[key]`` (added as ``{}`` when missing), copied one level if it is a dict."""
    value = parent.setdefault(key, {})
    if isinstance(value, dict):
        value = parent[key] = dict(value)
    return value


def _own_container(container: Any) -> Any:
    if not isinstance(container, dict):
        return container
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
    """
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
        env=tuple(sorted({var for vars_ in env_added.values() for var in vars_})),
        env_containers=tuple(sorted(env_added)),
    ).to_annotation()
