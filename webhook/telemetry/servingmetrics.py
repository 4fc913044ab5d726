"""What the chart's alerts need besides the admission counts: the serving certificate's
expiry and whether this process is ready.

* ``otel_injector_certificate_expiry_timestamp_seconds``: ``notAfter`` of the certificate
  in the file the server serves (``settings.tls_cert``), as Unix seconds. Read from the
  file, not from the Secret, so it is right in every certificate mode (self-managed,
  cert-manager, secret): it is what clients are handed. The file is parsed again only when
  its modification time or size changes, so a scrape costs one ``stat``. No series when
  there is no file or it does not hold a PEM certificate (the alert's ``absent`` is not
  used for it: a scrape of a process that serves no TLS has nothing to expire).
* ``otel_injector_ready``: 1 while ``/readyz`` answers 200, else 0.

Both are read at scrape time (a collector), so they never go stale between scrapes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from cryptography import x509
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

EXPIRY = "otel_injector_certificate_expiry_timestamp_seconds"
READY = "otel_injector_ready"
_EXPIRY_HELP = "When the serving certificate this process serves expires (notAfter), in Unix seconds."
_READY_HELP = "1 while this process reports ready (/readyz answers 200), else 0."


def certificate_expiry(path: str) -> float | None:
    """``notAfter`` of the first PEM certificate in ``path``, in Unix seconds; ``None``
    when the file is missing or holds none. Never raises."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(1024 * 1024)  # a certificate chain is a few KiB
        return x509.load_pem_x509_certificate(data).not_valid_after_utc.timestamp()
    except (OSError, ValueError):
        return None


class ServingCollector(Collector):
    """The two gauges of the module docstring, computed at each scrape."""

    def __init__(self, cert_path: str, ready: Callable[[], bool]) -> None:
        self._path = cert_path
        self._ready = ready
        self._seen: tuple[int, int] | None = None
        self._expiry: float | None = None

    def expiry(self) -> float | None:
        """The certificate's expiry, re-read only when the file changed."""
        if not self._path:
            return None
        try:
            info = os.stat(self._path)
        except OSError:
            self._seen, self._expiry = None, None
            return None
        seen = (info.st_mtime_ns, info.st_size)
        if seen != self._seen:
            self._seen, self._expiry = seen, certificate_expiry(self._path)
        return self._expiry

    def collect(self) -> Iterator[Metric]:
        """The expiry (no sample without a certificate) and readiness, as of now."""
        expiry = GaugeMetricFamily(EXPIRY, _EXPIRY_HELP)
        value = self.expiry()
        if value is not None:
            expiry.add_metric([], value)
        yield expiry
        yield GaugeMetricFamily(READY, _READY_HELP, value=1.0 if self._ready() else 0.0)

    def describe(self) -> Iterator[Metric]:
        """The two families, without reading anything (for registration)."""
        yield GaugeMetricFamily(EXPIRY, _EXPIRY_HELP)
        yield GaugeMetricFamily(READY, _READY_HELP)
