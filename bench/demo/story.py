"""The demo: the user's story on a real local control plane (``make demo``).

1. create namespace ``shop`` and label it ``tracing=enabled``;
2. ``kubectl apply`` a plain Deployment;
3. show what its pod got: the sidecar, the volume, the env (a short diff);
4. fetch the trace of that pod's creation from Jaeger and print it as a tree: the
   apiserver's spans, "Call mutating webhook", and otel-injector's spans under it.

Then it keeps everything running until Ctrl-C, or stops at once with ``--once`` (CI).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from importlib import resources
from typing import Any

import yaml

from webhook.core import names
from webhook.core.status import Status

NAMESPACE = "shop"
APP_LABEL = "app.kubernetes.io/name=checkout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's flags."""
    parser.add_argument("--once", action="store_true", help="stop after the walkthrough instead of waiting for Ctrl-C")


def say(text: str = "") -> None:
    """Demo output goes to stdout, flushed, so it interleaves properly with progress logs."""
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every step succeeded."""
    from bench.localcluster.controlplane import ControlPlane, ControlPlaneError

    def on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    say("otel-injector demo: building or reusing the control-plane binaries (a cold build takes minutes)")
    try:
        with ControlPlane(log=lambda m: say(f"  {m}")) as cp:
            _walkthrough(cp)
            say(f"\nDemo finished in {time.monotonic() - started:.0f}s.")
            if args.once:
                return 0
            _print_access(cp)
            say("\nEverything keeps running; press Ctrl-C to stop and clean up.")
            while True:
                time.sleep(3600)
    except ControlPlaneError as err:
        print(f"\notel-injector demo failed:\n{err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("\nStopped; processes and the work directory are cleaned up.")
        return 0


def _walkthrough(cp: Any) -> None:
    from bench.localcluster.injector import install, wait_for
    from bench.localcluster.traces import find_admission_trace
    from bench.localcluster.tracetree import build_tree, render

    injector = install(cp, log=lambda m: say(f"  {m}"))
    _print_access(cp, injector.url)

    say("\n[1/4] Create namespace shop and label it for tracing")
    _kubectl(cp, "create", "namespace", NAMESPACE)
    _kubectl(cp, "label", "namespace", NAMESPACE, f"{names.TRACING_LABEL}={names.TRACING_ENABLED}")
    wait_for(
        f"ConfigMap {names.CONFIGMAP_NAME} in {NAMESPACE}",
        lambda: cp.kubectl("get", "configmap", names.CONFIGMAP_NAME, "-n", NAMESPACE, check=False).returncode == 0,
        timeout=30,
    )
    say(f"      the injector copied its collector config: ConfigMap {NAMESPACE}/{names.CONFIGMAP_NAME}")

    say("\n[2/4] Apply a plain Deployment (nothing tracing-specific in it)")
    manifest = resources.files("bench.localcluster").joinpath("examples/checkout.yaml").read_text("utf-8")
    _kubectl(cp, "apply", "-f", "-", stdin=manifest, shown="kubectl apply -f checkout.yaml")

    say("\n[3/4] The pod the ReplicaSet created (Pending: this bench has no scheduler or kubelet)")
    pod = wait_for(
        "the checkout pod",
        lambda: (
            json.loads(cp.kubectl("get", "pods", "-n", NAMESPACE, "-l", APP_LABEL, "-o", "json").stdout).get("items")
            or [None]
        )[0],
        timeout=60,
    )
    template = yaml.safe_load(manifest)["spec"]["template"]
    for line in describe_injection(template, pod):
        say(f"      {line}")

    say("\n[4/4] The trace of that pod's creation, from Jaeger")
    trace = find_admission_trace(cp, namespace=NAMESPACE)
    say(f"      trace {trace['traceID']}")
    for line in render(build_tree(trace)).splitlines():
        say(f"      {line}")


def describe_injection(template: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """What the injector added to ``pod`` compared with the Deployment's ``template``."""
    spec, before = pod.get("spec", {}), template.get("spec", {})
    lines = [f"pod {pod['metadata']['name']}:"]
    known_init = {c["name"] for c in before.get("initContainers", [])}
    known = {c["name"] for c in before.get("containers", [])}
    for field_name, known_names in (("initContainers", known_init), ("containers", known)):
        for container in spec.get(field_name, []):
            if container["name"] in known_names:
                continue
            details = [f"image={container['image']}"]
            if container.get("restartPolicy"):
                details.append(f"restartPolicy={container['restartPolicy']}")
            probe = (container.get("startupProbe") or {}).get("httpGet", {})
            if probe:
                details.append(f"startupProbe=:{probe.get('port')}")
            lines.append(f"+ {field_name}: {container['name']}  {'  '.join(details)}")
    known_volumes = {v["name"] for v in before.get("volumes", [])}
    for volume in spec.get("volumes", []):
        if volume["name"] not in known_volumes and "configMap" in volume:
            lines.append(
                f"+ volume: {volume['name']}  (ConfigMap {volume['configMap']['name']}, "
                f"read-only at {names.CONFIG_MOUNT_PATH})"
            )
    before_env = {c["name"]: {e["name"] for e in c.get("env", [])} for c in before.get("containers", [])}
    for container in spec.get("containers", []):
        added = [e for e in container.get("env", []) if e["name"] not in before_env.get(container["name"], set())]
        if not added:
            continue
        lines.append(f"+ env in container {container['name']}:")
        for entry in added:
            value = entry.get("value")
            if value is None:
                value = f"<{(entry.get('valueFrom') or {}).get('fieldRef', {}).get('fieldPath', 'valueFrom')}>"
            lines.append(f"    {entry['name']}={value}")
    status = Status.parse((pod["metadata"].get("annotations") or {}).get(names.STATUS_ANNOTATION))
    if status is not None:
        lines.append(
            f"+ annotation {names.STATUS_ANNOTATION}: mode={status.mode or '-'} "
            f"configHash={status.config_hash or '-'} version={status.version or '-'}"
        )
    return lines


def _kubectl(cp: Any, *args: str, stdin: str | None = None, shown: str | None = None) -> None:
    say(f"    $ {shown or 'kubectl ' + shlex.join(args)}")
    result = cp.kubectl(*args, input=stdin)
    for line in result.stdout.strip().splitlines():
        say(f"      {line}")


def _print_access(cp: Any, webhook_url: str | None = None) -> None:
    say("\n  While it runs:")
    say(f"    export KUBECONFIG={cp.kubeconfig}")
    say(f"    {cp.binaries.kubectl} get pods -A")
    say(f"    Jaeger API: {cp.jaeger_query_url}/api/traces?service=otel-injector&limit=5")
    say(f"    Jaeger services: {cp.jaeger_query_url}/api/services")
    if webhook_url:
        say(f"    webhook: {webhook_url}/metrics (self-signed; use the CA in {cp.workdir}/webhook-tls/ca.crt)")
