"""The timing knobs of the in-cluster controllers and of the server, as frozen groups of
:class:`~webhook.config.settings.Settings` (``settings.cluster``, ``settings.serving``).

Like every setting, each field is set by ``OTEL_INJECTOR_<FIELD>`` or the YAML key
``<field>`` (the names are flat, the grouping is only in Python), is read once at start-up
and is handed down by constructor arguments; no module reads the environment for them.
A value that cannot work (not a number, not positive, a lease shorter than its renew
deadline) is a :class:`~webhook.core.settings.SettingsError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from webhook.core.settings import SettingsError


def _check_positive(group: object, *, zero_ok: tuple[str, ...] = ()) -> None:
    for f in fields(group):  # type: ignore[arg-type]
        value = getattr(group, f.name)
        allowed_zero = f.name in zero_ok and value == 0
        if not isinstance(value, int | float) or not math.isfinite(value) or (value <= 0 and not allowed_zero):
            least = "zero or more" if f.name in zero_ok else "a positive number of"
            raise SettingsError(f"{f.name} must be {least} seconds, not {value!r}")


@dataclass(frozen=True)
class ClusterTimings:
    """How often the controllers of :mod:`webhook.cluster` look, and how long they wait."""

    # A full re-check of every namespace, so a missed watch event costs at most this long.
    resync_seconds: float = 300.0
    # A copy kept only for pods that opted in by their own label outlives the last such
    # pod by this long, so a rollout that replaces every pod does not delete and re-create it.
    pod_grace_seconds: float = 60.0
    # How often every replica reads the certificate Secret (self-managed certificates).
    cert_sync_seconds: float = 30.0
    # Leader election, as client-go's: a Lease unchanged for lease_duration may be taken
    # over; the leader gives up if it cannot renew within renew_deadline; every candidate
    # tries again every retry_period.
    lease_duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    # How often the leader looks for pods missing the sidecar or out of date (a pod change
    # also triggers a look, at most this often).
    missing_pass_seconds: float = 30.0
    # A workload rolled by the leader is not rolled again for this long; each further
    # restart of it doubles the wait, up to restart_cooldown_max_seconds.
    restart_cooldown_seconds: float = 600.0
    restart_cooldown_max_seconds: float = 86400.0
    # How long the leader waits for one rollout to finish before it starts the next.
    rollout_wait_seconds: float = 120.0

    def __post_init__(self) -> None:
        _check_positive(self, zero_ok=("pod_grace_seconds",))
        if self.restart_cooldown_seconds > self.restart_cooldown_max_seconds:
            raise SettingsError(
                "restart_cooldown_seconds must not exceed restart_cooldown_max_seconds, not "
                f"{self.restart_cooldown_seconds:g} / {self.restart_cooldown_max_seconds:g}"
            )
        if not self.retry_period_seconds < self.renew_deadline_seconds < self.lease_duration_seconds:
            raise SettingsError(
                "need retry_period_seconds < renew_deadline_seconds < lease_duration_seconds, not "
                f"{self.retry_period_seconds:g} / {self.renew_deadline_seconds:g} / {self.lease_duration_seconds:g}"
            )


@dataclass(frozen=True)
class ServingTimings:
    """Timings of the serving process itself (:mod:`webhook.http.server`, :mod:`webhook.telemetry.tracing`)."""

    # How often the server looks at the TLS files for a renewed certificate.
    cert_poll_seconds: float = 5.0
    # The interpreter's GIL switch interval while the span export thread runs: the
    # longest a request waits for the GIL behind an export (Python's default is 5 ms).
    gil_switch_interval_seconds: float = 0.0005

    def __post_init__(self) -> None:
        _check_positive(self)
        if self.gil_switch_interval_seconds > 0.1:
            raise SettingsError(
                f"gil_switch_interval_seconds must be at most 0.1, not {self.gil_switch_interval_seconds!r}"
            )
