"""The composition root: the one place that builds the webhook app and its controllers.

``otel-injector serve`` points uvicorn at :func:`app_from_environment`, which each worker
calls once. It reads the settings, then wires the layers together by hand, so that no
layer imports another sideways:

* one :class:`~webhook.config.live.LiveInjection`, read by the admission handler (via the
  app) and updated by the reconciler (via the controllers);
* the in-cluster controllers (:class:`~webhook.cluster.controllers.Controllers`: leader
  election, ConfigMap reconciler, certificate keeper) when the settings need the
  Kubernetes API. The app's lifespan starts them before it reports ready and stops them,
  releasing the Lease, after it has stopped serving.
"""

from __future__ import annotations

from fastapi import FastAPI

from webhook.cluster.controllers import Controllers
from webhook.config.live import LiveInjection
from webhook.config.settings import Settings, load_settings
from webhook.http.app import BackgroundService, create_app
from webhook.telemetry.controllerspans import controller_tracer
from webhook.telemetry.logs import setup_logging
from webhook.telemetry.metrics import Metrics
from webhook.telemetry.repairmetrics import RepairMetrics
from webhook.telemetry.tracing import build_tracer_provider

#: What ``otel-injector serve`` hands to uvicorn (a string, so workers can import it).
APP_FACTORY = "webhook.compose:app_from_environment"


def build_app(settings: Settings) -> FastAPI:
    """The app for ``settings``, with the controllers they ask for."""
    live = LiveInjection(settings.injection)
    metrics = Metrics()
    # One tracer provider for the admissions' spans and the controllers' (one export queue).
    provider = build_tracer_provider(switch_interval=settings.serving.gil_switch_interval_seconds)
    services: list[BackgroundService] = []
    if settings.needs_kubernetes:
        services.append(
            Controllers(
                settings,
                on_source_hash=live.use_config_hash,
                metrics=RepairMetrics(metrics.registry),
                injection=live.current,
                tracer=controller_tracer(provider),
            )
        )
    return create_app(settings, live=live, services=services, app_metrics=metrics, tracer_provider=provider)


def app_from_environment() -> FastAPI:
    """The factory uvicorn calls in each worker: settings from the environment the CLI
    prepared, read once."""
    settings = load_settings()
    # Spawned workers do not inherit the parent's logging set-up, so each sets up its own.
    setup_logging(settings.log_level)
    return build_app(settings)
