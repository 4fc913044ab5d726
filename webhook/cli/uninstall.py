"""``otel-injector uninstall --phase pre-delete|post-delete``: the chart's helm hooks
around ``helm uninstall`` (see :mod:`webhook.cluster.cleanup`).

Exit codes: 0 done, 1 an API request failed or a wait timed out.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``uninstall`` command's flags."""
    parser.description = (
        "Run one phase of the chart's uninstall: pre-delete removes the webhook configuration first; "
        "post-delete removes what the injector created (managed ConfigMap copies, its Secret, its Lease)."
    )
    parser.add_argument("--phase", required=True, choices=("pre-delete", "post-delete"))
    parser.add_argument(
        "--pod-selector",
        default="app.kubernetes.io/name=otel-injector,app.kubernetes.io/component=webhook",
        help="post-delete waits until no pod of the injector's namespace matches it",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster in a pod, else $KUBECONFIG)")


def run(args: argparse.Namespace) -> int:
    """Run ``otel-injector uninstall``."""
    from webhook.cluster.cleanup import remove_leftovers, unregister
    from webhook.cluster.client import ApiError, Kube
    from webhook.config.settings import load_settings

    settings = load_settings(overrides={"kubeconfig": args.kubeconfig})
    try:
        kube = Kube.connect(settings.kubeconfig)
        if args.phase == "pre-delete":
            existed = unregister(kube, settings)
            print(
                f"otel-injector: MutatingWebhookConfiguration {settings.webhook_config_name} "
                f"{'deleted' if existed else 'was already gone'}"
            )
        else:
            removed = remove_leftovers(kube, settings, pod_selector=args.pod_selector)
            print("otel-injector: removed " + (", ".join(removed) if removed else "nothing (already clean)"))
    except ApiError as err:
        print(f"otel-injector: {err}", file=sys.stderr)
        return 1
    return 0
