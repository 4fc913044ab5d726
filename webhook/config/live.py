"""The injection settings in force now: one holder shared by the HTTP layer and the controllers.

Settings are frozen, but one piece of them follows the cluster: the hash of the collector
config that the reconciler reads from its source ConfigMap. The composition root
(:mod:`webhook.compose`) makes one :class:`LiveInjection`; the admission handler reads
:meth:`LiveInjection.current` per request and the reconciler calls
:meth:`LiveInjection.use_config_hash` when the source changes. Neither layer knows the other.

Swapping one attribute for a new frozen object is atomic under the GIL, so readers never
see a half-made value and need no lock.
"""

from __future__ import annotations

import dataclasses
import logging

from webhook.core.settings import InjectionSettings

log = logging.getLogger("webhook.config.live")


class LiveInjection:
    """Holds the current :class:`InjectionSettings`; a change replaces the whole object."""

    def __init__(self, initial: InjectionSettings) -> None:
        self._current = initial

    def current(self) -> InjectionSettings:
        """The settings every admission uses from now on."""
        return self._current

    def use_config_hash(self, new_hash: str) -> bool:
        """Record a new collector config hash; returns whether it changed anything."""
        if self._current.config_hash == new_hash:
            return False
        self._current = dataclasses.replace(self._current, config_hash=new_hash)
        log.info("injecting with collector config %s from now on", new_hash, extra={"config_hash": new_hash})
        return True
