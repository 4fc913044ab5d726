"""The report of ``otel-injector stale --missing``: pods the rules would inject that run
without the sidecar, grouped by workload (:func:`webhook.cluster.stale.group_by_workload`),
each with the reason the rules give (:func:`webhook.core.missing.missing_sidecar`).

Exit codes are those of ``stale`` (:func:`webhook.cluster.stale.exit_code`): 0 none,
3 some remain (without ``--restart``: any), 1 an API request failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from webhook.cluster.stale import StaleWorkload, workload_documents, workload_lines
from webhook.core import names


def render_missing_text(workloads: Sequence[StaleWorkload], *, restart: bool) -> str:
    """The human-readable report."""
    lines = workload_lines(workloads, what=f"pod(s) without the {names.CONTAINER_NAME} sidecar", restart=restart)
    total = sum(len(w.pods) for w in workloads)
    if workloads:
        lines.append(f"{total} pod(s) missing the sidecar in {len(workloads)} workload(s)")
    else:
        lines.append("no pods missing the sidecar")
    return "\n".join(lines) + "\n"


def render_missing_json(workloads: Sequence[StaleWorkload]) -> str:
    """The ``-o json`` report."""
    document = {
        "missingPods": sum(len(w.pods) for w in workloads),
        "workloads": workload_documents(workloads),
    }
    return json.dumps(document, indent=2) + "\n"
