"""The bench's OpenTelemetry Collector: the builder (ocb) and the collector it generates.

The collector is the core distribution's (``otel/opentelemetry-collector``), built with the
OpenTelemetry Collector Builder at a pinned release; the collector image of the node and
``otelcol validate`` of the default sidecar config use this one binary.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from string import Template

from bench.localcluster.gobuild import (
    GoGroup,
    Runner,
    build_go_group,
    build_info,
    cached_path,
    compile_packages,
    go_executable,
    group_recipe,
    install,
    is_current,
    recipe,
    template_text,
    write_if_changed,
)

#: OpenTelemetry Collector Builder release; every component in the manifest uses the
#: matching core (v0.x) and contrib release. Not v0.164.0/v0.163.0: their OTLP exporters
#: import go.opentelemetry.io/collector/internal/statusutil, a module the reachable proxy
#: serves no version of, so v0.162.0 is the newest collector that builds here.
OTELCOL_BUILDER_VERSION = "v0.162.0"
#: Collector version of the built ``otelcol``. The sidecar image default is
#: ``otel/opentelemetry-collector:<OTELCOL_VERSION>`` so that a config validated against
#: this binary is the one the sidecar runs.
OTELCOL_VERSION = OTELCOL_BUILDER_VERSION.removeprefix("v")
#: Release of the contrib components (resource processor, health_check extension).
OTELCOL_CONTRIB_VERSION = OTELCOL_BUILDER_VERSION
#: Release of the confmap providers that goes with OTELCOL_BUILDER_VERSION (v1.x modules).
OTELCOL_PROVIDERS_VERSION = "v1.68.0"

#: Components in the built collector, by kind, as ``otelcol components`` names them: the
#: core distribution's (otel/opentelemetry-collector, which the sidecar image reproduces)
#: minus OTELCOL_MISSING_COMPONENTS. In this release the OTLP exporters' types are
#: ``otlp_grpc`` and ``otlp_http``; ``otlp`` and ``otlphttp`` are still accepted in
#: configs as deprecated aliases.
OTELCOL_COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "receivers": ("nop", "otlp", "jaeger", "prometheus", "zipkin"),
    "processors": ("batch", "memory_limiter", "resource", "probabilistic_sampler"),
    "exporters": ("otlp_grpc", "otlp_http", "debug", "nop", "file", "prometheus_remote_write"),
    "extensions": ("health_check", "pprof", "zpages"),
    "connectors": ("forward",),
}
#: Components of the core distribution's manifest that the build leaves out: the module
#: proxy reachable here serves no v0.162.0 of a module each needs (hostmetrics:
#: internal/gopsutilenv; kafka receiver: pkg/kafka/configkafka; attributes, filter, span:
#: pkg/ottl/xottl and pkg/ottl/contexts/xprofile; the kafka, prometheus and zipkin
#: exporter modules themselves).
OTELCOL_MISSING_COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "receivers": ("hostmetrics", "kafka"),
    "processors": ("attributes", "filter", "span"),
    "exporters": ("kafka", "prometheus", "zipkin"),
}
#: Build tags of the core distribution's manifest (dist.build_tags).
OTELCOL_BUILD_TAGS = "grpcnotrace"

_OCB = GoGroup(
    key="ocb",
    module="go.opentelemetry.io/collector/cmd/builder",
    version=OTELCOL_BUILDER_VERSION,
    packages={"ocb": "go.opentelemetry.io/collector/cmd/builder"},
)
# "-core": the core distribution's components; a cache slot of its own, apart from the
# minimal collector earlier revisions built under the plain version.
OTELCOL_LABEL = f"{OTELCOL_BUILDER_VERSION}-core"
_OTELCOL_MANIFEST = "otelcol-builder.yaml.tmpl"


def otelcol_recipe() -> str:
    return recipe(
        OTELCOL_BUILDER_VERSION,
        OTELCOL_CONTRIB_VERSION,
        OTELCOL_PROVIDERS_VERSION,
        OTELCOL_VERSION,
        OTELCOL_BUILD_TAGS,
        template_text(_OTELCOL_MANIFEST),
        group_recipe(_OCB),
    )


def _otelcol_go_mod(manifest: str) -> str:
    """The go.mod of the generated collector: every ``gomod:`` of the manifest, plus otelcol."""
    required = [line.split("gomod:", 1)[1].strip() for line in manifest.splitlines() if "gomod:" in line]
    required.append(f"go.opentelemetry.io/collector/otelcol {OTELCOL_BUILDER_VERSION}")
    body = "\n".join(f"\t{line}" for line in required)
    return f"module otel-injector.local/bench/otelcol\n\ngo 1.25\n\nrequire (\n{body}\n)\n"


def build_otelcol(root: Path, log: Callable[[str], None]) -> None:
    go = go_executable()
    ocb = cached_path(root, "ocb", _OCB.label)
    if not is_current(ocb, group_recipe(_OCB)):
        build_go_group(_OCB, ["ocb"], root, log)

    workdir = root / "build" / f"otelcol-{OTELCOL_LABEL}"
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "src"
    runner = Runner("otelcol", log, workdir / "build.log")
    runner.say(f"building a collector with the builder {OTELCOL_BUILDER_VERSION}")
    manifest = Template(template_text(_OTELCOL_MANIFEST)).substitute(
        otelcol_version=OTELCOL_VERSION,
        output_path=str(src),
        core=OTELCOL_BUILDER_VERSION,
        contrib=OTELCOL_CONTRIB_VERSION,
        providers=OTELCOL_PROVIDERS_VERSION,
    )
    (workdir / "builder.yaml").write_text(manifest, encoding="utf-8")
    # The builder only generates the sources. Its own module step runs a strict `go mod
    # tidy`, which fails here on modules that only the components' tests import (e.g.
    # fileexporter's tests need otlpencodingextension, which the proxy does not serve);
    # so the wrapper go.mod requires the manifest's modules and `go mod tidy -e` resolves
    # the rest. A module the build itself needs and cannot get still fails the compile.
    runner.run(
        "generate sources (ocb)",
        [str(ocb), "--config", str(workdir / "builder.yaml"), "--skip-compilation", "--skip-get-modules"],
        workdir,
    )
    write_if_changed(src / "go.mod", _otelcol_go_mod(manifest))
    runner.run("download modules (go mod tidy -e)", [go, "mod", "tidy", "-e"], src)
    out_dir = Path(tempfile.mkdtemp(prefix=".out-", dir=workdir))
    try:
        compile_packages(
            runner,
            go,
            ldflags="-s -w",
            output=str(out_dir / "otelcol"),
            packages=["."],
            cwd=src,
            tags=(OTELCOL_BUILD_TAGS,),
        )
        info = build_info(
            go,
            name="otelcol",
            module=f"{OTELCOL_BUILDER_VERSION} builder manifest",
            release=OTELCOL_VERSION,
            components={k: list(v) for k, v in OTELCOL_COMPONENTS.items()},
            recipe=otelcol_recipe(),
            seconds=round(runner.elapsed(), 1),
        )
        path = install(
            out_dir / "otelcol", root, name="otelcol", label=OTELCOL_LABEL, recipe=otelcol_recipe(), info=info
        )
        runner.say(f"installed {path}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
