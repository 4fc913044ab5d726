"""``otel-injector stale``: the command around :mod:`webhook.cluster.stale`; with
``--missing``, around :mod:`webhook.cluster.missingreport` (pods missing the sidecar).

Exit codes: 0 nothing stale, 3 stale pods remain, 1 an API request failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from webhook.cluster.stale import (
    _RESOURCE,
    RESTARTABLE,
    exit_code,
    find_stale,
    group_by_workload,
    render_json,
    render_text,
    restart_patch,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``stale`` command's flags."""
    parser.description = (
        "List injected pods whose collector config or sidecar image is out of date, grouped by workload "
        "(with --missing: pods the rules would inject that run without the sidecar). "
        "Exit 0: nothing stale; 3: stale pods remain; 1: an API request failed."
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only this namespace (default: all namespaces)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="all namespaces (the default)")
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster in a pod, else $KUBECONFIG or ~/.kube/config)"
    )
    parser.add_argument(
        "--config", help="YAML settings file, as for serve (sidecar image, source ConfigMap, namespace)"
    )
    parser.add_argument("--image", help="the current sidecar image (default: from the settings)")
    parser.add_argument("--config-hash", help="the current config hash (default: from the source ConfigMap)")
    parser.add_argument("--restart", action="store_true", help="roll the stale Deployments, StatefulSets, DaemonSets")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--missing",
        action="store_true",
        help="list pods the rules would inject that run without the sidecar instead (exit 3 when any)",
    )


def current_config_hash(kube: Any, namespace: str, source: str, fallback: str) -> tuple[str, str]:
    """(hash, where it came from): the source ConfigMap's, else ``fallback``."""
    from webhook.cluster.client import ApiError
    from webhook.cluster.copies import read_source
    from webhook.cluster.paths import configmap_path

    try:
        found = read_source(kube.get_or_none(configmap_path(namespace, source)))
    except ApiError as err:
        if err.status not in (401, 403):
            raise
        found = None
    if found is not None:
        return found.hash, f"ConfigMap {namespace}/{source}"
    return fallback, "settings" if fallback else ""


def namespace_labels(kube: Any, namespace: str | None) -> dict[str, dict[str, str]]:
    """Namespace name -> labels (one GET with ``-n``, else a list). Without the right to
    read namespaces only pods labelled ``tracing=enabled`` are in scope; a warning says so."""
    from webhook.cluster.client import ApiError
    from webhook.cluster.objects import labels_of
    from webhook.cluster.paths import api_path

    try:
        if namespace:
            found = kube.get_or_none(api_path("v1", "namespaces", None, namespace))
            items = [found] if found else []
        else:
            items, _ = kube.list(api_path("v1", "namespaces"))
    except ApiError as err:
        if err.status not in (401, 403):
            raise
        print(f"otel-injector: cannot read namespaces ({err}); only pods labelled tracing=enabled", file=sys.stderr)
        return {}
    return {str((n.get("metadata") or {}).get("name")): dict(labels_of(n)) for n in items}


def run(args: argparse.Namespace) -> int:
    """Run ``otel-injector stale``."""
    import dataclasses

    from webhook.cluster.client import ApiError, Kube
    from webhook.cluster.missing import find_missing
    from webhook.cluster.missingreport import render_missing_json, render_missing_text
    from webhook.cluster.paths import api_path
    from webhook.config.settings import load_settings

    settings = load_settings(config_file=args.config, overrides={"kubeconfig": args.kubeconfig})
    injection = settings.injection
    if args.image:
        injection = dataclasses.replace(injection, sidecar_image=args.image)
    try:
        kube = Kube.connect(settings.kubeconfig)
        if args.config_hash or args.missing:
            current_hash = args.config_hash or ""
        else:
            current_hash, origin = current_config_hash(
                kube, injection.namespace, settings.collector_source, injection.config_hash
            )
            if not origin:
                print("otel-injector: no source ConfigMap or config hash found; comparing images only", file=sys.stderr)
        path = api_path("v1", "pods", args.namespace) if args.namespace else api_path("v1", "pods")
        pods, _ = kube.list(path)
        if args.missing:
            found = find_missing(pods, namespace_labels=namespace_labels(kube, args.namespace), settings=injection)
            workloads = group_by_workload(found)
        else:
            workloads = group_by_workload(find_stale(pods, current_hash=current_hash, settings=injection))
        if args.restart:
            patch = restart_patch()
            for w in workloads:
                if not w.restartable:
                    continue
                try:
                    kube.merge_patch(api_path(RESTARTABLE[w.kind], _RESOURCE[w.kind], w.namespace, w.name), patch)
                    w.restarted = True
                except ApiError as err:
                    w.restarted, w.error = False, str(err)
    except ApiError as err:
        print(f"otel-injector: {err}", file=sys.stderr)
        return 1
    if args.missing and args.output == "json":
        sys.stdout.write(render_missing_json(workloads))
    elif args.missing:
        sys.stdout.write(render_missing_text(workloads, restart=args.restart))
    elif args.output == "json":
        sys.stdout.write(render_json(workloads, current_hash=current_hash, image=injection.sidecar_image))
    else:
        sys.stdout.write(
            render_text(workloads, current_hash=current_hash, image=injection.sidecar_image, restart=args.restart)
        )
    return exit_code(workloads, restart=args.restart)
