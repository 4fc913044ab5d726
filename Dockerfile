# The otel-injector webhook image, on Debian bookworm's own python3 (as the distroless
# Python images are). From the repository root, on a machine with a registry and an index:
#
#   docker build -t otel-injector:0.1.0 .
#
# With neither (the bench: `python -m bench.localcluster.images --injector`, see
# bench/localcluster/images/injector.py), BuildKit gets the same two Debian layers as
# images built from Debian's packages with mmdebstrap, under their own local names
# (build args PYTHON_IMAGE and PIP_IMAGE, named contexts from OCI layouts), and the wheels
# from a wheelhouse downloaded beforehand from the same lock (named context `wheels`,
# build arg PIP_NO_INDEX=1). Nothing in the build then reaches the network.
#
# Every package comes from a hash-pinned lock: requirements.lock (runtime dependencies)
# and deploy/docker/build-requirements.lock (the wheel build backend). After changing
# pyproject.toml, regenerate both with deploy/docker/update-locks.sh.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz.

ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG PYTHON_IMAGE=debian-python3
ARG PIP_IMAGE=debian-python3-pip

# Debian's python3 on bookworm-slim: the run-time base. No pip, no ensurepip, no compiler.
FROM ${DEBIAN_IMAGE} AS debian-python3
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 \
 && rm -rf /var/lib/apt/lists/*

# The same plus Debian's pip: the build-time base only.
FROM debian-python3 AS debian-python3-pip
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip=23.0.1+dfsg-1 \
 && rm -rf /var/lib/apt/lists/*

# Wheels found before the index; empty here, so pip downloads them. A build without a
# network replaces this stage with a wheelhouse (named context `wheels`).
FROM scratch AS wheels

FROM ${PIP_IMAGE} AS deps
# Set to 1 (with a wheelhouse) to forbid pip's index.
ARG PIP_NO_INDEX
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src

# The runtime venv gets no pip, so nothing in the final image can install packages;
# Debian's pip installs into it with --python. Binary wheels only: no compilers. pip
# resolves the dependencies itself (no --no-deps): with --require-hashes a package the
# lock misses for this Python fails the build instead of being left out.
COPY requirements.lock deploy/docker/build-requirements.lock ./
RUN --mount=type=bind,from=wheels,target=/wheels \
    python3 -m venv --without-pip /opt/otel-injector \
 && python3 -m venv --without-pip /opt/build \
 && python3 -m pip --python /opt/otel-injector/bin/python install --no-cache-dir \
        --require-hashes --only-binary=:all: --find-links /wheels -r requirements.lock \
 && python3 -m pip --python /opt/build/bin/python install --no-cache-dir \
        --require-hashes --only-binary=:all: --find-links /wheels -r build-requirements.lock

FROM deps AS builder
# README.md (pyproject's readme) is left out: it only fills the package description, and
# setuptools builds without it.
COPY pyproject.toml ./
COPY webhook ./webhook
# The project's own files (package, metadata, console script) are collected in /layer, so
# the image's dependency layer stays the same, and cached, when only webhook/ changes.
# (cp --parents recreates the relative paths it is given, hence the working directory /.)
WORKDIR /
RUN python3 -m pip --python /opt/build/bin/python wheel --no-cache-dir --no-deps --no-build-isolation \
        --wheel-dir /dist /src \
 && python3 -m pip --python /opt/otel-injector/bin/python install --no-cache-dir --no-deps --no-index \
        /dist/*.whl \
 && mkdir /layer \
 && cp -a --parents opt/otel-injector/bin/otel-injector opt/otel-injector/lib/python3*/site-packages/webhook \
        opt/otel-injector/lib/python3*/site-packages/otel_injector-*.dist-info /layer/

FROM ${PYTHON_IMAGE}
# The base's Debian package list label stays; its title, description and version are replaced.
LABEL org.opencontainers.image.title="otel-injector" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that injects an OpenTelemetry Collector sidecar" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/otel-injector/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The uid matches runAsUser in the chart.
RUN groupadd --system --gid 65532 otel-injector \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin otel-injector
COPY --from=deps /opt/otel-injector /opt/otel-injector
COPY --from=builder /layer/ /
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["otel-injector"]
CMD ["serve", "--port", "8443", "--tls-cert", "/var/run/otel-injector/certs/tls.crt", "--tls-key", "/var/run/otel-injector/certs/tls.key"]
