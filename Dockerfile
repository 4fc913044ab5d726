# syntax=docker/dockerfile:1
# The otel-injector webhook image. From the repository root:
#
#   docker build -t otel-injector:0.1.0 .
#
# Every package comes from a hash-pinned lock: requirements.lock (runtime dependencies)
# and deploy/docker/build-requirements.lock (the wheel build backend). After changing
# pyproject.toml, regenerate both with deploy/docker/update-locks.sh.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz.

ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# The runtime venv has no pip, so nothing in the final image can install packages; the
# base image's pip installs into it with --python. Binary wheels only: no compilers.
COPY requirements.lock deploy/docker/build-requirements.lock ./
RUN python -m venv --without-pip /opt/otel-injector \
 && pip --python /opt/otel-injector/bin/python install --no-cache-dir --no-deps \
        --require-hashes --only-binary=:all: -r requirements.lock \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --no-deps \
        --require-hashes --only-binary=:all: -r build-requirements.lock

# README.md (pyproject's readme) is left out: it only fills the package description, and
# setuptools builds without it.
COPY pyproject.toml ./
COPY webhook ./webhook
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/otel-injector/bin/python install --no-cache-dir --no-deps /wheels/*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="otel-injector" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that injects an OpenTelemetry Collector sidecar" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/otel-injector/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# No pip at run time; the uid matches runAsUser in the chart.
RUN python -m pip uninstall --yes --no-cache-dir pip \
 && groupadd --system --gid 65532 otel-injector \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin otel-injector
COPY --from=builder /opt/otel-injector /opt/otel-injector
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["otel-injector"]
CMD ["serve", "--port", "8443", "--tls-cert", "/var/run/otel-injector/certs/tls.crt", "--tls-key", "/var/run/otel-injector/certs/tls.key"]
