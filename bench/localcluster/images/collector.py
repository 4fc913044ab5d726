"""The collector image, under exactly otel-injector's default sidecar image name.

``otel/opentelemetry-collector:<version>`` is the OpenTelemetry project's core
distribution. This image reproduces it as far as the Go module proxy allows:

- ``/otelcol`` is the bench's own ``otelcol`` (bench/localcluster/binaries.py), built by
  the OpenTelemetry Collector Builder of the same release from the core distribution's
  manifest, so the binary that validates the sidecar config in the tests is the one the
  sidecar runs. The component list follows the newest copy of upstream's manifest that
  could be consulted (v0.139.0's; the v0.162.0 file was not available), every module at
  v0.162.0. The upstream components whose modules the proxy does not serve at this
  release are left out, listed in :data:`~bench.localcluster.binaries.OTELCOL_MISSING_COMPONENTS`
  and in the image label ``io.otel-injector.bench.missing-components``: the receivers
  hostmetrics and kafka, the processors attributes, filter and span, the exporters kafka,
  prometheus and zipkin.
- As upstream's Dockerfile: ``FROM scratch``, user 10001, the CA bundle at
  /etc/ssl/certs/ca-certificates.crt (upstream copies Alpine's; this is Debian's, from
  the build machine: both are the Mozilla CA list), the distribution's default config at
  /etc/otelcol/config.yaml (collector/config.yaml), ``ENTRYPOINT ["/otelcol"]``,
  ``CMD ["--config", "/etc/otelcol/config.yaml"]``, ``EXPOSE 4317 4318 55678 55679``
  and the OCI labels upstream's release build sets.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from bench.localcluster import binaries
from bench.localcluster.images import archive
from bench.localcluster.images.archive import Dir, File, ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.cache import ImageBuildError, file_digest, recipe_hash

COLLECTOR_IMAGE = f"docker.io/otel/opentelemetry-collector:{binaries.OTELCOL_VERSION}"
#: The uid upstream's Dockerfile runs the collector as (ARG USER_UID=10001).
COLLECTOR_UID = 10001
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
EXPOSED_PORTS = ("4317/tcp", "4318/tcp", "55678/tcp", "55679/tcp")


def _config_yaml() -> bytes:
    return (resources.files(__package__ or "bench.localcluster.images") / "collector" / "config.yaml").read_bytes()


def missing_components() -> str:
    """``kind/name`` of every upstream component this build lacks, space separated."""
    return " ".join(f"{kind}/{name}" for kind, names in binaries.OTELCOL_MISSING_COMPONENTS.items() for name in names)


def _otelcol(log: Callable[[str], None]) -> Path:
    try:
        return binaries.ensure_binaries(["otelcol"], log=log).otelcol
    except binaries.BinaryBuildError as exc:
        raise ImageBuildError(f"collector: building otelcol failed: {exc}") from exc


def _ca_bundle() -> Path:
    if not CA_BUNDLE.is_file():
        raise ImageBuildError(f"collector: {CA_BUNDLE} is missing; install Debian's ca-certificates package")
    return CA_BUNDLE


def collector_recipe(log: Callable[[str], None]) -> str:
    """Cache key: the otelcol binary's digest, the CA bundle, the config and this code."""
    return recipe_hash(
        "collector",
        COLLECTOR_IMAGE,
        file_digest(_otelcol(log)),
        file_digest(_ca_bundle()),
        _config_yaml(),
        Path(__file__).read_bytes(),
        Path(archive.__file__).read_bytes(),
    )


def build_collector(workdir: Path, archive_path: Path, log: Callable[[str], None]) -> str:
    """Write the collector image to ``archive_path``."""
    otelcol = _otelcol(log)
    layer = write_layer(
        workdir / "layer.tar",
        [
            Dir("etc"),
            Dir("etc/otelcol"),
            File("etc/otelcol/config.yaml", _config_yaml()),
            File("etc/ssl/certs/ca-certificates.crt", _ca_bundle().read_bytes()),
            File("otelcol", otelcol.read_bytes(), mode=0o755),
        ],
    )
    config = ImageConfig(
        entrypoint=["/otelcol"],
        cmd=["--config", "/etc/otelcol/config.yaml"],
        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        user=str(COLLECTOR_UID),
        exposed_ports=EXPOSED_PORTS,
        labels={
            "org.opencontainers.image.name": "opentelemetry-collector-releases",
            "org.opencontainers.image.version": binaries.OTELCOL_VERSION,
            "org.opencontainers.image.source": "https://github.com/open-telemetry/opentelemetry-collector-releases",
            "org.opencontainers.image.licenses": "Apache-2.0",
            "io.otel-injector.bench.built-from": (
                f"OpenTelemetry Collector Builder {binaries.OTELCOL_BUILDER_VERSION}, core distribution "
                "manifest (component list of upstream's v0.139.0 manifest) in "
                "bench/localcluster/gomod/otelcol-builder.yaml.tmpl"
            ),
            "io.otel-injector.bench.missing-components": missing_components(),
        },
    )
    return write_docker_archive(
        archive_path,
        name=COLLECTOR_IMAGE,
        layers=[layer],
        config=config,
        history="bench/localcluster/images/collector.py: otelcol + config.yaml + CA bundle, FROM scratch",
    )
