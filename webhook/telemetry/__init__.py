"""Telemetry for every layer: tracing (OTLP), Prometheus metrics and JSON logs joined by trace id."""
