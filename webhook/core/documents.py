"""The :class:`~webhook.core.context.ClusterContext` of the ``inject`` CLI, from its input.

``otel-injector inject`` sees no cluster, only YAML. What the webhook reads from its caches,
the CLI reads from the documents of the same input (issue 12 §4):

* ``Namespace`` documents: their annotations apply to the pods of that namespace in the
  input (the pod's own value wins), as in the cluster;
* ``ConfigMap`` documents labelled ``otel-injector.io/collector-config=<name>`` in the
  injector's namespace (``settings.namespace``): the named collector configs;
* every ``ConfigMap`` document: the ``envFrom`` sources of the pods in its namespace.

A ConfigMap the pods reference but the input lacks is "not found in the input", with a
warning, since the CLI cannot know what it holds. The same helpers as the webhook's
(:mod:`webhook.core.context`) decide what counts, so both give the same pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.core import names
from webhook.core.context import (
    ClusterContext,
    collector_config_name,
    env_from_config_maps,
    namespace_defaults,
    otel_keys,
)
from webhook.core.settings import DEFAULT_NAMESPACE, config_hash

WHERE = "in the input"


class DocumentView:
    """Namespaces and ConfigMaps of one input, indexed for :meth:`context_for`."""

    def __init__(
        self, documents: Iterable[Any], *, injector_namespace: str = DEFAULT_NAMESPACE, namespace: str | None = None
    ) -> None:
        self.namespace_annotations: dict[str, Mapping[str, str]] = {}
        self.collector_configs: dict[str, str] = {}
        self.config_maps: dict[str, dict[str, Mapping[str, str]]] = {}
        for document in _objects(documents):
            kind = document.get("kind")
            metadata = document.get("metadata")
            if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
                continue
            name = metadata["name"]
            own = metadata.get("namespace")
            if kind == "Namespace":
                annotations = metadata.get("annotations")
                usable = annotations if isinstance(annotations, Mapping) else {}
                self.namespace_annotations[name] = namespace_defaults(usable)
            elif kind == "ConfigMap":
                ns = namespace or (own if isinstance(own, str) and own else "default")
                data = document.get("data")
                self.config_maps.setdefault(ns, {})[name] = otel_keys(data if isinstance(data, Mapping) else None)
                labels = metadata.get("labels")
                named = collector_config_name(labels if isinstance(labels, Mapping) else {})
                config = data.get(names.CONFIG_KEY) if isinstance(data, Mapping) else None
                if named is not None and isinstance(config, str) and own in (injector_namespace, None):
                    self.collector_configs.setdefault(named, config_hash(config.encode("utf-8")))

    def context_for(self, pod: Mapping[str, Any], namespace: str) -> ClusterContext:
        """The context of one pod of the input in ``namespace``."""
        in_namespace = self.config_maps.get(namespace, {})
        referenced = {ref: in_namespace[ref] for ref in env_from_config_maps(pod) if ref in in_namespace}
        return ClusterContext(
            namespace_annotations=self.namespace_annotations.get(namespace, {}),
            collector_configs=self.collector_configs,
            config_maps=referenced,
            where=WHERE,
        )


def _objects(documents: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for document in documents:
        if not isinstance(document, Mapping):
            continue
        kind = document.get("kind")
        items = document.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            yield from _objects(items)
        else:
            yield document
