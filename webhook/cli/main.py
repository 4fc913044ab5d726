"""The ``otel-injector`` command line: ``serve``, ``inject``, ``certs`` and ``stale``.

Exit codes: 0 done, 1 the work failed (unreadable input, a failed step), 2 bad usage or
settings. Errors are one line on stderr; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from webhook import __version__
from webhook.config.settings import env_var, load_settings
from webhook.core.settings import SettingsError

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "run", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return command(args)
    except SettingsError as err:
        print(f"otel-injector: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``); that is not an error of ours.
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-injector",
        description="Kubernetes admission webhook that injects an OpenTelemetry Collector sidecar.",
    )
    parser.add_argument("--version", action="version", version=f"otel-injector {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTPS admission webhook")
    serve.add_argument("--port", type=int, help=f"port to listen on (default 8443; {env_var('port')})")
    serve.add_argument("--bind-address", help=f"address to listen on (default 0.0.0.0; {env_var('bind_address')})")
    serve.add_argument("--tls-cert", help=f"serving certificate, PEM (required; {env_var('tls_cert')})")
    serve.add_argument("--tls-key", help=f"serving key, PEM (required; {env_var('tls_key')})")
    serve.add_argument("--config", help=f"YAML settings file (optional; {env_var('config')})")
    serve.add_argument("--workers", type=int, help=f"uvicorn worker processes (default 1; {env_var('workers')})")
    serve.set_defaults(run=_serve)

    inject = sub.add_parser("inject", help="inject the sidecar into Kubernetes YAML (manual injection)")
    inject.add_argument("-f", "--filename", default="-", help="YAML file, or - for stdin (default)")
    inject.add_argument("--namespace", "-n", help="namespace to assume (default: each object's own, or default)")
    inject.add_argument("--config", help="YAML settings file, as for serve")
    inject.set_defaults(run=_inject)

    certs = sub.add_parser("certs", help="write a CA and a serving cert for the webhook")
    certs.add_argument("--out", required=True, help="directory for ca.crt, tls.crt and tls.key")
    certs.add_argument(
        "--dns-name", action="append", default=[], help="a DNS SAN, e.g. otel-injector.otel-injector.svc"
    )
    certs.add_argument("--ip", action="append", default=[], help="an IP SAN, e.g. 127.0.0.1")
    certs.add_argument("--days", type=int, default=365, help="validity of the serving cert (default 365)")
    certs.set_defaults(run=_certs)

    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``stale`` lives in its own module; it imports the Kubernetes client only when it runs."""
    from webhook.cli import stale

    parser = sub.add_parser("stale", help="list injected pods whose collector config or image is out of date")
    stale.add_arguments(parser)
    parser.set_defaults(run=stale.run)
    from webhook.cli import uninstall

    parser = sub.add_parser(
        "uninstall", help="the chart's uninstall hooks: webhook configuration first, then leftovers"
    )
    uninstall.add_arguments(parser)
    parser.set_defaults(run=uninstall.run)
    # The demo is the test bench's, not the product's: say where it is instead of "invalid choice".
    demo = sub.add_parser("demo", help=argparse.SUPPRESS)
    demo.set_defaults(run=_demo_moved)


def _demo_moved(_: argparse.Namespace) -> int:
    print(
        "otel-injector: the demo is part of the test bench, not of the installed package. "
        "Clone the repository and run `make demo` there (it builds a local cluster).",
        file=sys.stderr,
    )
    return 2


def _serve(args: argparse.Namespace) -> int:
    from webhook.compose import APP_FACTORY
    from webhook.http.server import serve
    from webhook.telemetry.logs import setup_logging

    flags = {
        "port": args.port,
        "bind_address": args.bind_address,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "workers": args.workers,
    }
    settings = load_settings(config_file=args.config, overrides=flags)
    setup_logging(settings.log_level)
    if settings.cert_mode == "self-managed":
        # Find or create the cert in its Secret and write the files before TLS loads them.
        from webhook.cluster.certfiles import with_cert_paths
        from webhook.cluster.certkeeper import SelfCertError, bootstrap

        try:
            settings = with_cert_paths(settings)
        except OSError as err:  # no writable temp directory for the certificate files
            print(f"otel-injector: cannot choose where to write the certificate: {err}", file=sys.stderr)
            return 1
        flags.update(tls_cert=settings.tls_cert, tls_key=settings.tls_key)
        try:
            bootstrap(settings)
        except SelfCertError as err:
            print(f"otel-injector: {err}", file=sys.stderr)
            return 1
    # Workers build their app from the environment, so the flags travel there too.
    for name, value in flags.items():
        if value is not None:
            os.environ[env_var(name)] = str(value)
    if args.config:
        os.environ[env_var("config")] = str(Path(args.config).resolve())
    serve(settings, APP_FACTORY)
    return 0


def _inject(args: argparse.Namespace) -> int:
    from webhook.core.manifests import ManifestError, inject_yaml

    settings = load_settings(config_file=args.config)
    try:
        text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text(encoding="utf-8")
    except OSError as err:
        print(f"otel-injector: cannot read {args.filename}: {err.strerror}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"otel-injector: {args.filename} is not UTF-8 text", file=sys.stderr)
        return 1
    try:
        output, report = inject_yaml(text, settings.injection, args.namespace)
    except ManifestError as err:
        print(f"otel-injector: {err}", file=sys.stderr)
        return 1
    for message in report.messages:
        print(message, file=sys.stderr)
    sys.stdout.write(output)
    return 0


def _certs(args: argparse.Namespace) -> int:
    from webhook.tls.certs import generate_bundle

    if args.days < 1:
        print("otel-injector: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        bundle = generate_bundle(args.dns_name, args.ip, days=args.days)
    except ValueError as err:
        print(f"otel-injector: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        bundle.write(out)
    except OSError as err:
        print(f"otel-injector: cannot write to {out}: {err.strerror}", file=sys.stderr)
        return 1
    print(bundle.ca_bundle)
    return 0
