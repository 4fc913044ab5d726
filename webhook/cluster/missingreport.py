"""The report of ``otel-injector stale --missing``: pods the rules would inject that run
without the sidecar, grouped by workload (:func:`webhook.cluster.stale.group_by_workload`),
each with the reason the rules give (:func:`webhook.core.missing.missing_sidecar`).

Exit codes are those of ``stale`` (:func:`webhook.cluster.stale.exit_code`): 0 none,
3 some remain (without ``--restart``: any), 1 an API request failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from webhook.cluster.stale import StaleWorkload
from webhook.core import names


def render_missing_text(workloads: Sequence[StaleWorkload], *, restart: bool) -> str:
    """The human-readable report."""
    lines = []
    for w in workloads:
        head = f"{w.kind} {w.namespace}/{w.name}: {len(w.pods)} pod(s) without the {names.CONTAINER_NAME} sidecar"
        if w.restarted:
            head += "; restarted"
        elif w.error:
            head += f"; restart failed: {w.error}"
        elif w.restartable and not restart:
            head += "; roll it with --restart"
        elif not w.restartable:
            head += f"; {w.note}"
        lines.append(head)
        lines.extend(f"  {p.name}: {'; '.join(p.reasons)}" for p in w.pods)
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
        "workloads": [
            {
                "namespace": w.namespace,
                "kind": w.kind,
                "name": w.name,
                "restartable": w.restartable,
                "restarted": w.restarted,
                **({"error": w.error} if w.error else {}),
                **({"note": w.note} if w.note else {}),
                "pods": [{"name": p.name, "reasons": list(p.reasons)} for p in w.pods],
            }
            for w in workloads
        ],
    }
    return json.dumps(document, indent=2) + "\n"
