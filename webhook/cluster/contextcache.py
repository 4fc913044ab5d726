"""The webhook's cluster context, from informer caches kept in every replica.

The admission path makes no API call (issue 12 §3, §4, §7). What the pure injection needs
from the cluster (:class:`~webhook.core.context.ClusterContext`) is kept current here, in
memory, by three list+watch informers (:class:`~webhook.cluster.informer.Informer`) that run
in **every** replica, leader or not, since every replica answers admissions:

* ``context-namespaces``: every Namespace, slimmed to its name, the ``tracing`` label and
  its inheritable ``otel-injector.io/*`` annotations (namespace defaults);
* ``collector-configs``: the ConfigMaps of the injector's namespace labelled
  ``otel-injector.io/collector-config`` (named collector configs: name -> hash; the
  reconciler copies their data from this same cache);
* ``env-from-configmaps`` (``env_from_cache``): the ConfigMaps of namespaces labelled
  ``tracing=enabled`` only, each slimmed to its ``OTEL_*`` keys
  (:func:`~webhook.core.context.otel_keys`): the rest of a ConfigMap is dropped before it
  is cached, and a ConfigMap of an untraced namespace is not cached at all. When a
  namespace becomes traced, this informer lists again to pick up its ConfigMaps.

:meth:`ContextCache.context_for` builds one pod's frozen context from them: a few dict
lookups under the informers' locks, nothing else (figures in the README).

How stale: each cache follows its watch, so a change reaches it within the watch's
delivery delay (milliseconds on a healthy apiserver). A failed watch re-lists with bounded
backoff (at most 30 s between tries) and a ``410 Gone`` re-lists at once; while it fails,
the cache keeps its last state, which is what admissions use. A newly traced namespace's
ConfigMaps arrive with the re-list that its label triggers (one cluster-wide list).

Before a cache has synced (its first list), a pod is never held: it is injected with what
is known (nothing from that cache: the pod's own annotations, the default config, our env)
and one warning says the view is incomplete (reason ``context-syncing``). ``Controllers``
waits for the first lists, bounded by ``context_sync_seconds``, before the app reports
ready, so in practice only a replica whose apiserver is slow serves unsynced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from webhook.cluster.client import Kube
from webhook.cluster.copies import Source, read_source
from webhook.cluster.informer import Informer
from webhook.cluster.objects import JSONDict, annotations_of, labels_of
from webhook.cluster.paths import api_path, configmap_path
from webhook.config.settings import Settings
from webhook.core import names
from webhook.core.context import (
    COLLECTOR_CONFIG_ANNOTATION,
    COLLECTOR_CONFIG_LABEL,
    ClusterContext,
    collector_config_name,
    env_from_config_maps,
    is_traced_namespace,
    namespace_defaults,
    otel_keys,
)
from webhook.core.overrides import Notice

log = logging.getLogger("webhook.cluster.contextcache")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
SYNCING = Notice(
    "context-syncing",
    "the injector's cluster cache has not synced yet: namespace defaults, named collector configs and envFrom "
    "values may be missing for this pod",
)


class ContextCache:
    """The informers behind :meth:`context_for`. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.namespace = settings.injection.namespace
        self.sync_seconds = settings.cluster.context_sync_seconds
        self._traced: frozenset[str] = frozenset()
        # Namespaces traced since the env-from cache's last list: not cached until its next.
        self._pending: dict[str, int] = {}
        self._configs: Mapping[str, str] = _EMPTY
        self._sources: Mapping[str, Source] = _EMPTY
        self._lock = threading.Lock()
        #: Called (informer thread) after the named sources changed: the reconciler re-checks.
        self.on_sources: list[Callable[[], object]] = []
        self.namespaces = Informer(
            kube,
            api_path("v1", "namespaces"),
            name="context-namespaces",
            on_change=self._on_namespace,
            transform=slim_namespace,
        )
        self.sources = Informer(
            kube,
            configmap_path(self.namespace),
            name="collector-configs",
            label_selector=COLLECTOR_CONFIG_LABEL,
            on_change=self._on_source,
        )
        self.env_from: Informer | None = None
        if settings.env_from_cache:
            self.env_from = Informer(
                kube,
                api_path("v1", "configmaps"),
                name="env-from-configmaps",
                on_change=lambda old, new: None,
                transform=slim_config_map,
                keep=self._in_traced_namespace,
            )

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the informers; returns once they have synced, or after ``context_sync_seconds``."""
        deadline = time.monotonic() + self.sync_seconds
        self.namespaces.start()
        self.sources.start()
        # The env-from cache keeps only traced namespaces' ConfigMaps: know them first.
        self.namespaces.synced.wait(self.sync_seconds)
        if self.env_from is not None:
            self.env_from.start()
        for informer in self.informers:
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "cluster context cache %s not synced within %.0fs; serving anyway", informer.name, self.sync_seconds
                )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every informer (bounded)."""
        for informer in self.informers:
            informer.stop(timeout)

    @property
    def informers(self) -> tuple[Informer, ...]:
        """The informers of this cache."""
        return (self.namespaces, self.sources, *((self.env_from,) if self.env_from is not None else ()))

    def synced(self) -> bool:
        """Whether every cache has loaded its first list."""
        return all(i.synced.is_set() for i in self.informers)

    # -- what the reconciler reads ------------------------------------------------------

    def collector_configs(self) -> Mapping[str, str]:
        """Every known named collector config: name -> config hash (frozen)."""
        return self._configs

    def source(self, name: str) -> Source | None:
        """The named collector config ``name``'s data and hash, if known."""
        return self._sources.get(name)

    # -- the admission path -------------------------------------------------------------

    def context_for(self, pod: Mapping[str, Any], namespace: str) -> ClusterContext:
        """The frozen context of one pod about to be injected in ``namespace``. No I/O."""
        notices: list[Notice] = []
        synced = True
        cached = self.namespaces.get("", namespace)
        if cached is None and not self.namespaces.synced.is_set():
            synced = False
        annotations = annotations_of(cached) if cached is not None else _EMPTY
        if not self.sources.synced.is_set() and _mentions_named_config(pod, annotations):
            synced = False
        config_maps: dict[str, Mapping[str, str]] | None = None
        refs = list(env_from_config_maps(pod))
        env_from = self.env_from
        if refs and env_from is not None:
            if not env_from.synced.is_set():
                synced = False
            elif namespace not in self._traced:
                notices.append(_untraced(namespace))
            elif self._pending.get(namespace, -1) >= env_from.lists:
                synced = False
            else:
                config_maps = {}
                for ref in refs:
                    obj = env_from.get(namespace, ref)
                    if obj is not None:
                        config_maps[ref] = obj.get("data") or _EMPTY
        if not synced:
            notices.insert(0, SYNCING)
        return ClusterContext(
            namespace_annotations=annotations,
            collector_configs=self._configs,
            config_maps=config_maps,
            notices=tuple(notices),
        )

    # -- change handlers (informer threads) ---------------------------------------------

    def _in_traced_namespace(self, obj: JSONDict) -> bool:
        return str((obj.get("metadata") or {}).get("namespace") or "") in self._traced

    def _on_namespace(self, old: JSONDict | None, new: JSONDict | None) -> None:
        obj = new or old or {}
        name = str((obj.get("metadata") or {}).get("name") or "")
        traced = new is not None and is_traced_namespace(labels_of(new))
        with self._lock:
            if traced == (name in self._traced):
                return
            self._traced = self._traced | {name} if traced else self._traced - {name}
            env_from = self.env_from
            if traced and env_from is not None and env_from.synced.is_set():
                self._pending[name] = env_from.lists
            else:
                self._pending.pop(name, None)
        if env_from is not None and env_from.synced.is_set():
            # Its ConfigMaps were refused by the keep filter until now (or must go now).
            env_from.relist()

    def _on_source(self, old: JSONDict | None, new: JSONDict | None) -> None:
        del old, new
        chosen: dict[str, tuple[str, Source]] = {}
        for configmap in self.sources.items():
            if COLLECTOR_CONFIG_LABEL not in labels_of(configmap):
                continue  # not a source (the list's label selector already leaves such out)
            name = collector_config_name(labels_of(configmap))
            source = read_source(configmap)
            cm_name = str((configmap.get("metadata") or {}).get("name") or "")
            if name is None or source is None:
                log.warning(
                    "ConfigMap %s/%s is labelled %s but has no usable name or %s; ignored",
                    self.namespace,
                    cm_name,
                    COLLECTOR_CONFIG_LABEL,
                    names.CONFIG_KEY,
                )
                continue
            if name in chosen and chosen[name][0] < cm_name:
                log.warning(
                    "collector config %s is given by both %s and %s; using %s",
                    name,
                    chosen[name][0],
                    cm_name,
                    chosen[name][0],
                )
                continue
            chosen[name] = (cm_name, source)
        sources = {name: source for name, (_, source) in chosen.items()}
        if sources == dict(self._sources):
            return
        configs = MappingProxyType({name: source.hash for name, source in sources.items()})
        log.info("named collector configs: %s", dict(configs) or "none", extra={"collector_configs": dict(configs)})
        self._sources, self._configs = MappingProxyType(sources), configs
        for listener in self.on_sources:
            listener()


def slim_namespace(namespace: JSONDict) -> JSONDict:
    """What the namespace cache keeps: name, resourceVersion, the tracing label, and the
    inheritable annotations (:func:`~webhook.core.context.namespace_defaults`)."""
    metadata = namespace.get("metadata") or {}
    labels = labels_of(namespace)
    tracing = labels.get(names.TRACING_LABEL)
    return {
        "metadata": {
            "name": metadata.get("name"),
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": {names.TRACING_LABEL: tracing} if tracing is not None else {},
            "annotations": namespace_defaults(annotations_of(namespace)),
        }
    }


def slim_config_map(configmap: JSONDict) -> JSONDict:
    """What the envFrom cache keeps of a ConfigMap: its key and its ``OTEL_*`` data."""
    metadata = configmap.get("metadata") or {}
    return {
        "metadata": {
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "data": otel_keys(configmap.get("data")),
    }


def _mentions_named_config(pod: Mapping[str, Any], namespace_annotations: Mapping[str, str]) -> bool:
    metadata = pod.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    on_pod = isinstance(annotations, Mapping) and COLLECTOR_CONFIG_ANNOTATION in annotations
    return on_pod or COLLECTOR_CONFIG_ANNOTATION in namespace_annotations


def _untraced(namespace: str) -> Notice:
    return Notice(
        "env-from-unknown",
        f"envFrom ConfigMaps are cached only in namespaces labelled {names.TRACING_LABEL}={names.TRACING_ENABLED}, "
        f"not {namespace}: an OTEL_* key they set is overridden by the injected env",
    )
