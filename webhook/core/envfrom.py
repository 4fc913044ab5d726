"""``envFrom`` values win (issue 12 §7): what a container's ``envFrom`` ConfigMaps set.

The kubelet builds a container's environment from its ``envFrom`` sources first, in order
(a later source overrides an earlier one), then from its ``env`` list, which overrides
them. So an explicit variable we add would silently clobber the same name from ``envFrom``
(opentelemetry-operator #1393, #1814). :func:`user_env` gives, from the cached ``OTEL_*``
keys of those ConfigMaps (:class:`~webhook.core.context.ClusterContext`), the variables
the user already sets that way; :func:`~webhook.core.appenv.inject_env` then treats them
as the user's own (what "wins" means for each variable is documented there).

Secrets are never read (the injector has no right to, and would hold secrets in memory):
a container with a ``secretRef`` source gets a warning naming it, because an ``OTEL_*``
key there would still be overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.core.bounds import MAX_LABEL_LENGTH, clip
from webhook.core.overrides import Notice

_OTEL = "OTEL_"
# Names listed in one warning at most; the rest are counted.
_LISTED = 5


@dataclass
class EnvFromReport:
    """What :func:`user_env` found across a pod's containers, said once per pod."""

    secrets: dict[str, list[str]] = field(default_factory=dict)  # container -> Secret names
    unknown: set[str] = field(default_factory=set)  # referenced ConfigMaps not found

    def notices(self, where: str) -> list[Notice]:
        """One notice for the Secret sources, one for the ConfigMaps not found ``where``."""
        found: list[Notice] = []
        if self.secrets:
            shown = [
                f"{clip(container, MAX_LABEL_LENGTH)} ({', '.join(clip(secret) for secret in secrets[:2])})"
                for container, secrets in self.secrets.items()
            ]
            more = f" and {len(shown) - _LISTED:,} more" if len(shown) > _LISTED else ""
            found.append(
                Notice(
                    "env-from-secret",
                    f"envFrom Secret not read (Secrets never are) in container {', '.join(shown[:_LISTED])}{more}: "
                    "an OTEL_* key it sets is overridden by the injected env; set it in env or a ConfigMap",
                )
            )
        if self.unknown:
            listed = sorted(self.unknown)
            more = f" and {len(listed) - _LISTED:,} more" if len(listed) > _LISTED else ""
            found.append(
                Notice(
                    "env-from-unknown",
                    f"envFrom ConfigMap {', '.join(clip(n, MAX_LABEL_LENGTH) for n in listed[:_LISTED])}{more} "
                    f"not found {where}: an OTEL_* key it sets is overridden by the injected env",
                )
            )
        return found


def user_env(
    container: Mapping[str, Any],
    config_maps: Mapping[str, Mapping[str, str]] | None,
    report: EnvFromReport,
    *,
    name: str,
) -> Mapping[str, str]:
    """The ``OTEL_*`` variables ``container``'s ``envFrom`` ConfigMaps set, as the kubelet
    resolves them (prefix applied, a later source wins). ``config_maps`` ``None``: not looked
    up, nothing found. Secret sources and ConfigMaps that do not exist (and are not
    ``optional``) go into ``report``; ``name`` is the container's name for it.

    Prefixes: the cache keeps keys starting with ``OTEL_`` and the names of our variables
    without ``OTEL_`` (:func:`~webhook.core.context.otel_keys`), so the result is exact for
    no prefix and for ``prefix: OTEL_``; another prefix that would make an ``OTEL_*`` name
    (``OTEL_EXPORTER_`` + ``OTLP_ENDPOINT``) is not seen.
    """
    sources = container.get("envFrom")
    if not isinstance(sources, list):
        return {}
    values: dict[str, str] = {}
    for source in sources:
        if not isinstance(source, dict):  # JSON objects; the Mapping ABC check costs more
            continue
        secret = source.get("secretRef")
        if isinstance(secret, dict):
            report.secrets.setdefault(name, []).append(str(secret.get("name") or "?"))
        ref = source.get("configMapRef")
        if not isinstance(ref, dict) or config_maps is None:
            continue
        ref_name = ref.get("name")
        if not isinstance(ref_name, str):
            continue
        keys = config_maps.get(ref_name)
        if keys is None:
            if ref.get("optional") is not True:
                report.unknown.add(ref_name)
            continue
        prefix = source.get("prefix")
        prefix = prefix if isinstance(prefix, str) else ""
        for key, value in keys.items():
            variable = prefix + key
            if variable.startswith(_OTEL):
                values[variable] = value
    return values
