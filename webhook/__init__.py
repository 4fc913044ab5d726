"""otel-injector: a Kubernetes mutating admission webhook that gives traced pods an
OpenTelemetry Collector sidecar.

Sub-packages by layer, top to bottom (imports only run downwards; ``lint-imports`` checks it):

* :mod:`webhook.cli`: the ``otel-injector`` command (``serve``, ``inject``, ``certs``, ``stale``);
* :mod:`webhook.compose`: the composition root that wires the app and the controllers;
* :mod:`webhook.http` (the FastAPI app, the uvicorn/TLS server) and :mod:`webhook.cluster`
  (Kubernetes client, leader election, reconciler, certificate keeper, ``stale``);
* :mod:`webhook.admission`: typed AdmissionReviews and the bytes-in, bytes-out handler;
* :mod:`webhook.config`: the frozen :class:`~webhook.config.settings.Settings`;
* :mod:`webhook.telemetry` (tracing, metrics, logs), :mod:`webhook.core` (the pure rules:
  :func:`~webhook.core.injection.inject_pod`) and :mod:`webhook.tls` (certificates).

See docs/architecture.md for the path of one admission through them.
"""

__version__ = "0.1.0"
