"""The ``otel-injector.io/status`` annotation: one typed record, one writer, one parser.

The injection writes it (:func:`webhook.core.injection.inject_pod`); the reconciler
(which ConfigMap a pod mounts), ``otel-injector stale`` (which config and image a pod got)
and the demo read it. All of them go through :class:`Status`, so a field is named in one
place only.

The annotation is compact, key-sorted JSON (equal records are equal strings; the goldens
pin the exact bytes)::

    {"configHash":"…","configMap":"otel-collector-sidecar","env":[…],"envContainers":["app"],
     "image":"otel/opentelemetry-collector:0.162.0","initContainers":["otel-collector"],
     "mode":"native","version":"0.1.0","volumes":["otel-collector-config"]}

The sidecar is listed under ``initContainers`` in native mode and ``containers`` in
container mode. An env-only pod (mode ``none``) records no config, image, sidecar or
volume, but its ``endpoint`` (``node`` or the URL)::

    {"endpoint":"node","env":[…],"envContainers":["app"],"mode":"none","version":"0.1.0"}

Records without that field (every older one) parse as before.
:meth:`Status.parse` is tolerant: unknown fields are ignored (a newer version may add
some), a field of the wrong type reads as not recorded, and text that is not a JSON object
gives ``None``, so a reader decides what an unreadable record means.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from webhook.core.settings import ENV_ONLY

_SIDECAR_FIELDS = {"native": "initContainers", "container": "containers"}


@dataclass(frozen=True)
class Status:
    """What was injected into one pod. ``""`` or ``()`` means "not recorded" (a record
    from an older or unknown version)."""

    version: str = ""
    #: Hash of the collector config in force when the pod was injected.
    config_hash: str = ""
    #: The ConfigMap the sidecar mounts.
    config_map: str = ""
    #: The sidecar image the pod got.
    image: str = ""
    #: "native", "container", or "none" (env only, no sidecar).
    mode: str = ""
    #: The names of the containers added (the sidecar).
    sidecars: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    #: The env var names added to any app container, and the containers that got any.
    env: tuple[str, ...] = ()
    env_containers: tuple[str, ...] = ()
    #: Where an env-only pod exports: "node" or a URL ("" with a sidecar).
    endpoint: str = ""

    def to_annotation(self) -> str:
        """The annotation value: compact JSON with sorted keys."""
        record: dict[str, Any] = {
            "version": self.version,
            "configHash": self.config_hash,
            "configMap": self.config_map,
            "image": self.image,
            "mode": self.mode,
            "volumes": list(self.volumes),
            "env": list(self.env),
            "envContainers": list(self.env_containers),
        }
        if self.mode == ENV_ONLY:
            # No sidecar: no config, image or volume to record, only where the app exports.
            for unused in ("configHash", "configMap", "image", "volumes"):
                if not record[unused]:
                    del record[unused]
        if self.mode != ENV_ONLY or self.sidecars:
            record[_SIDECAR_FIELDS.get(self.mode, "containers")] = list(self.sidecars)
        if self.endpoint:
            record["endpoint"] = self.endpoint
        return json.dumps(record, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> Status | None:
        """The record in an annotation value; ``None`` when there is none or it is not a
        JSON object (absent, bad JSON, a list). Never raises."""
        if not isinstance(text, str):
            return None
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):  # bad JSON, or nested deeper than the parser goes
            return None
        if not isinstance(record, dict):
            return None
        mode = _text(record.get("mode"))
        sidecar_field = _SIDECAR_FIELDS.get(mode)
        sidecars = _names(record.get(sidecar_field)) if sidecar_field else ()
        if not sidecars:
            sidecars = _names(record.get("initContainers")) or _names(record.get("containers"))
        return cls(
            version=_text(record.get("version")),
            config_hash=_text(record.get("configHash")),
            config_map=_text(record.get("configMap")),
            image=_text(record.get("image")),
            mode=mode,
            sidecars=sidecars,
            volumes=_names(record.get("volumes")),
            env=_names(record.get("env")),
            env_containers=_names(record.get("envContainers")),
            endpoint=_text(record.get("endpoint")),
        )

    @property
    def env_only(self) -> bool:
        """Whether the pod got only the env, no sidecar (``sidecar-mode: none``)."""
        return self.mode == ENV_ONLY

    def mounts(self, config_map: str) -> bool:
        """Whether the sidecar mounts ``config_map``. A record that does not say is taken
        to mount it: every version so far mounted the configured ConfigMap unless a pod
        annotation chose another, and that choice is always recorded. An env-only pod
        mounts nothing."""
        if self.env_only:
            return False
        return not self.config_map or self.config_map == config_map


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    items: Iterable[Any] = value
    return tuple(v for v in items if isinstance(v, str))
