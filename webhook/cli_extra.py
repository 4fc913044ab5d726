"""Registration point for commands that live in their own modules (``demo``, ``stale``),
so :mod:`webhook.cli` stays small and each command's imports load only when it runs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the optional commands to ``sub``. Each imports its module lazily when run."""
