"""What the pure injection knows of the cluster beyond the pod: :class:`ClusterContext`.

The injection is pure: pod + frozen settings + frozen context in, new pod + reasons out.
Three rules of issue 12 need facts that are not in the pod:

* namespace defaults (§4): the ``otel-injector.io/*`` annotations of the pod's Namespace;
* named collector configs (§3): which names exist, and the hash of each one's config;
* ``envFrom`` values win (§7): the ``OTEL_*`` keys of the ConfigMaps a container's
  ``envFrom`` names.

Two producers build the same frozen :class:`ClusterContext`, per pod, with the helpers of
this module, so they cannot disagree on what counts:

* the webhook, from informer caches kept in every replica
  (:mod:`webhook.cluster.contextcache`); the admission path makes no API call;
* the ``inject`` CLI, from the Namespace and ConfigMap documents of its input
  (:mod:`webhook.core.documents`).

:data:`NO_CONTEXT` means "no cluster view at all": no namespace defaults, no named config
known, and ``envFrom`` not looked at (the behaviour before issue 12). What a producer could
not know (a cache not synced yet, a namespace whose ConfigMaps are not cached) travels as
``notices``: the pod is still injected, with the defaults, and the user hears why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from webhook.core import names
from webhook.core.overrides import COLLECTOR_CONFIG, Notice

#: The label that makes a ConfigMap in the injector's namespace a named collector config
#: source (its value is the name), and that the injection puts on a pod using one (so the
#: reconciler can watch exactly those pods by label selector).
COLLECTOR_CONFIG_LABEL = names.ANNOTATION_PREFIX + "collector-config"
#: The pod (or namespace) annotation that selects a named collector config.
COLLECTOR_CONFIG_ANNOTATION = COLLECTOR_CONFIG

#: Our annotations that are not pod overrides, so a Namespace does not pass them on:
#: the status record, the ConfigMap markers, and the workload/namespace roll-out switch.
NOT_INHERITED = frozenset(
    {
        names.STATUS_ANNOTATION,
        names.MANAGED_ANNOTATION,
        names.ANNOTATION_PREFIX + "config-hash",
        names.ANNOTATION_PREFIX + "source",
        names.ANNOTATION_PREFIX + "auto-restart",
        names.ANNOTATION_PREFIX + "admission-trace",
    }
)

#: What an ``envFrom`` ConfigMap cache keeps of each value: the values are read only for
#: ``OTEL_EXPORTER_OTLP_PROTOCOL`` (a word) and ``OTEL_RESOURCE_ATTRIBUTES`` (to skip our
#: keys the user already has); a longer value is cut, which at worst repeats one of our
#: keys before the user's, where the user's still wins (the SDKs keep the last).
MAX_ENV_VALUE = 1024
_OTEL = "OTEL_"
# A collector config name becomes part of a ConfigMap name and a label value: a DNS-1123 label.
_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class ClusterContext:
    """The cluster facts one pod's injection may use. Frozen; treat the mappings as read-only.

    * ``namespace_annotations``: the inheritable ``otel-injector.io/*`` annotations of the
      pod's Namespace (:func:`namespace_defaults`).
    * ``collector_configs``: every known named collector config, name -> config hash.
    * ``config_maps``: the ``envFrom`` ConfigMaps of the pod that exist, name -> their
      ``OTEL_*`` keys (:func:`otel_keys`); a referenced name that is absent does not exist.
      ``None``: not looked up (no cluster view), so ``envFrom`` is not considered.
    * ``notices``: what the producer could not know; each is one warning on the pod.
    * ``where``: where the facts come from, for warnings ("in the cluster", "in the input").
    """

    namespace_annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    collector_configs: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    config_maps: Mapping[str, Mapping[str, str]] | None = None
    notices: tuple[Notice, ...] = ()
    where: str = "in the cluster"


#: No cluster view: what :func:`~webhook.core.injection.inject_pod` uses by default.
NO_CONTEXT = ClusterContext()

#: What gives a pod its context: ``provider(pod, namespace)``. The webhook's is the informer
#: cache's :meth:`~webhook.cluster.contextcache.ContextCache.context_for`, the CLI's
#: :meth:`~webhook.core.documents.DocumentView.context_for`. Never does I/O.
ContextProvider = Callable[[Mapping[str, Any], str], ClusterContext]


def namespace_defaults(annotations: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations of a Namespace that its pods inherit: every ``otel-injector.io/*``
    one with a text value, except :data:`NOT_INHERITED`. Frozen."""
    kept = {
        key: value
        for key, value in annotations.items()
        if isinstance(key, str)
        and key.startswith(names.ANNOTATION_PREFIX)
        and key not in NOT_INHERITED
        and isinstance(value, str)
    }
    return MappingProxyType(kept) if kept else _EMPTY


def is_traced_namespace(labels: Mapping[str, Any]) -> bool:
    """Whether a Namespace's labels opt all its pods in (the ``envFrom`` cache covers those)."""
    return labels.get(names.TRACING_LABEL) == names.TRACING_ENABLED


def collector_config_name(labels: Mapping[str, Any]) -> str | None:
    """The name a ConfigMap's labels give it as a named collector config source, if it is
    one and the name is usable (a DNS-1123 label: it becomes ``otel-collector-sidecar-<name>``)."""
    value = labels.get(COLLECTOR_CONFIG_LABEL)
    return value if isinstance(value, str) and _NAME.match(value) else None


def valid_collector_config_name(value: str) -> bool:
    """Whether ``value`` can name a collector config (a DNS-1123 label)."""
    return bool(_NAME.match(value))


def copy_name(config_map: str, name: str) -> str:
    """The managed copy of the named config ``name``: ``otel-collector-sidecar-<name>``
    (``config_map`` is the default copy's name, ``settings.config_map``)."""
    return f"{config_map}-{name}"


def otel_keys(data: Mapping[str, Any] | None) -> Mapping[str, str]:
    """What the ``envFrom`` cache keeps of a ConfigMap's ``data``: the keys that become
    ``OTEL_*`` variables without a prefix or with the prefix ``OTEL_`` (see
    :func:`~webhook.core.envfrom.user_env`), values cut to :data:`MAX_ENV_VALUE`. Frozen;
    the shared empty mapping for the many ConfigMaps without any."""
    if not isinstance(data, Mapping):
        return _EMPTY
    kept = {
        key: value[:MAX_ENV_VALUE]
        for key, value in data.items()
        if isinstance(key, str) and isinstance(value, str) and (key.startswith(_OTEL) or _OTEL + key in _OURS)
    }
    return MappingProxyType(kept) if kept else _EMPTY


def env_from_config_maps(pod: Mapping[str, Any]) -> Iterator[str]:
    """The ConfigMap names the pod's containers take ``envFrom`` (any shape tolerated).

    Objects are checked with ``isinstance(..., dict)``, not ``Mapping``: pods come from JSON,
    and the ABC check made this 10 us instead of 2 us on the bench's typical pod."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("containers", "initContainers"):
        containers = spec.get(key)
        for container in containers if isinstance(containers, list) else ():
            sources = container.get("envFrom") if isinstance(container, dict) else None
            for source in sources if isinstance(sources, list) else ():
                ref = source.get("configMapRef") if isinstance(source, dict) else None
                name = ref.get("name") if isinstance(ref, dict) else None
                if isinstance(name, str) and name:
                    yield name


# The variables the injection sets, so that a key ``SERVICE_NAME`` under ``prefix: OTEL_``
# is kept too. Spelled out here (not imported from appenv) to keep the import graph flat;
# tests/unit/core/test_context.py checks the list against appenv and names.
_OURS = frozenset(
    {
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_PROPAGATORS",
        "OTEL_RESOURCE_ATTRIBUTES",
        *(var for var, _, _ in names.APP_DOWNWARD_ENV),
    }
)
