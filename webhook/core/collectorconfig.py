"""Several managed collector configs (issue 12 §3): which config a pod's sidecar mounts.

Sources are ConfigMaps in the injector's namespace labelled
``otel-injector.io/collector-config=<name>``; the reconciler keeps a copy of each named
``otel-collector-sidecar-<name>`` in every namespace that uses it. The annotation
``otel-injector.io/collector-config: <name>`` (on the pod, else on its Namespace, see
:mod:`webhook.core.namespacedefaults`) selects one; without it, the default config. An
unknown or malformed name gets a warning and the default config.
``otel-injector.io/config`` (a ConfigMap the user manages) wins when it is set at the same
level: it names the exact ConfigMap to mount.

A pod using a named config mounts its copy, records that config's hash in the status
record (so a change of that source finds its pods), and is labelled
``otel-injector.io/collector-config=<name>``: the reconciler watches pods by that label to
know which namespaces need which copy, without watching every pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.bounds import clip
from webhook.core.context import COLLECTOR_CONFIG_ANNOTATION, copy_name, valid_collector_config_name
from webhook.core.overrides import CONFIG, Notice
from webhook.core.settings import InjectionSettings


@dataclass(frozen=True)
class ConfigChoice:
    """The named config a pod uses: ``name`` and its copy's ``config_map`` and ``config_hash``."""

    name: str
    config_map: str
    config_hash: str


def choose_collector_config(
    annotations: Mapping[str, Any],
    collector_configs: Mapping[str, str],
    settings: InjectionSettings,
) -> tuple[ConfigChoice | None, list[Notice]]:
    """The named config ``annotations`` select, if any and known; else ``None`` (the default
    config, or the user's ``otel-injector.io/config``) and a notice when a name was given
    but cannot be used."""
    raw = annotations.get(COLLECTOR_CONFIG_ANNOTATION)
    if raw is None:
        return None, []
    value = raw.strip() if isinstance(raw, str) else str(raw)
    shown = repr(clip(value, 64))
    if CONFIG in annotations:
        return None, [
            Notice(
                "invalid-collector-config",
                f"{COLLECTOR_CONFIG_ANNOTATION}: {shown} ignored, {CONFIG} is set too and names the ConfigMap to mount",
            )
        ]
    if not valid_collector_config_name(value):
        why = "is not a collector config name (a DNS label)"
    elif value not in collector_configs:
        why = f"names no collector config (no ConfigMap labelled {COLLECTOR_CONFIG_ANNOTATION}={clip(value, 64)})"
    else:
        return ConfigChoice(value, copy_name(settings.config_map, value), collector_configs[value]), []
    message = f"{COLLECTOR_CONFIG_ANNOTATION}: {shown} {why}; using the default config"
    return None, [Notice("invalid-collector-config", message)]
