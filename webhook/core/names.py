"""Names that users, manifests and tools depend on. Changing one is a breaking change."""

from typing import Final

CONTAINER_NAME: Final = "otel-collector"
VOLUME_NAME: Final = "otel-collector-config"
CONFIGMAP_NAME: Final = "otel-collector-sidecar"
CONFIG_MOUNT_PATH: Final = "/etc/otelcol"
CONFIG_KEY: Final = "config.yaml"
CONFIG_FILE_PATH: Final = f"{CONFIG_MOUNT_PATH}/{CONFIG_KEY}"

TRACING_LABEL: Final = "tracing"
TRACING_ENABLED: Final = "enabled"
TRACING_DISABLED: Final = "disabled"

ANNOTATION_PREFIX: Final = "otel-injector.io/"
STATUS_ANNOTATION: Final = ANNOTATION_PREFIX + "status"
# Marks a ConfigMap that the reconciler must never overwrite when set to "false".
MANAGED_ANNOTATION: Final = ANNOTATION_PREFIX + "managed"

OTLP_GRPC_PORT: Final = 4317
OTLP_HTTP_PORT: Final = 4318
HEALTH_PORT: Final = 13133
COLLECTOR_PORTS: Final = (OTLP_GRPC_PORT, OTLP_HTTP_PORT, HEALTH_PORT)

# The upstream kubelet annotation that marks a static (mirror) pod.
MIRROR_POD_ANNOTATION: Final = "kubernetes.io/config.mirror"

# Env vars the sidecar reads through the downward API; the default collector config
# turns them into resource attributes.
SIDECAR_DOWNWARD_ENV: Final = (
    ("K8S_POD_NAME", "metadata.name"),
    ("K8S_NAMESPACE_NAME", "metadata.namespace"),
    ("K8S_POD_UID", "metadata.uid"),
    ("K8S_NODE_NAME", "spec.nodeName"),
)

# Env vars added to app containers so OTEL_RESOURCE_ATTRIBUTES can reference pod-level
# values with $(VAR): the pod's name and uid do not exist yet when the webhook runs.
APP_DOWNWARD_ENV: Final = (
    ("OTEL_RESOURCE_ATTRIBUTES_POD_NAME", "metadata.name", "k8s.pod.name"),
    ("OTEL_RESOURCE_ATTRIBUTES_POD_UID", "metadata.uid", "k8s.pod.uid"),
    ("OTEL_RESOURCE_ATTRIBUTES_NODE_NAME", "spec.nodeName", "k8s.node.name"),
)

# Written by the webhook (not the pure injection) on a pod injected within a caller's trace:
# the W3C traceparent of the admission's span, so the reconciler's span for that pod links
# to it (webhook.admission.tracerecord).
ADMISSION_TRACE_ANNOTATION: Final = ANNOTATION_PREFIX + "admission-trace"
# On a workload, its pod template or its namespace: "true" lets the leader roll the
# workload when its pods' collector config or sidecar image is out of date.
AUTO_RESTART_ANNOTATION: Final = ANNOTATION_PREFIX + "auto-restart"
