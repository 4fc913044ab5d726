"""Registration point for commands that live in their own modules (``demo``, ``stale``),
so :mod:`webhook.cli` stays small and each command's imports load only when it runs.

Each module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib

_COMMANDS = {
    "demo": ("webhook.demo", "run the whole flow on a local control plane and print the trace"),
    "stale": ("webhook.stale", "list injected pods whose collector config or image is out of date"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the optional commands to ``sub``."""
    for name, (module_name, help_text) in _COMMANDS.items():
        parser = sub.add_parser(name, help=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue  # a command still being built does not break the others
        module.add_arguments(parser)
        parser.set_defaults(run=module.run)
