"""otel-injector: a Kubernetes mutating admission webhook that gives traced pods an
OpenTelemetry Collector sidecar.

The package is layered so a newcomer can find things by name:

* pure core, no I/O: :mod:`webhook.names`, :mod:`webhook.settings`, :mod:`webhook.quantity`,
  :mod:`webhook.overrides`, :mod:`webhook.workload`, :mod:`webhook.decision`,
  :mod:`webhook.sidecar`, :mod:`webhook.appenv`, :mod:`webhook.injection`, :mod:`webhook.patch`;
* admission plumbing: :mod:`webhook.review` (typed structures, response constructors) and
  :mod:`webhook.handler` (review in, response out);
* thin outer layers: :mod:`webhook.app` (HTTP), :mod:`webhook.server` (uvicorn + TLS),
  :mod:`webhook.telemetry`, :mod:`webhook.logs`, :mod:`webhook.metrics`, :mod:`webhook.certs`,
  :mod:`webhook.manifests` and :mod:`webhook.cli`.
"""

__version__ = "0.1.0"
