"""Shared helpers for tests: building AdmissionReviews, calling the HTTPS server, polling,
putting process-wide logging back."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from webhook.core.patch import apply_patch

T = TypeVar("T")


def review_for(
    pod: dict[str, Any],
    *,
    namespace: str | None = None,
    operation: str = "CREATE",
    dry_run: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview as the apiserver sends it for ``pod``."""
    ns = namespace or (pod.get("metadata") or {}).get("namespace") or "default"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": ns,
            "name": (pod.get("metadata") or {}).get("name", ""),
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch in an AdmissionReview response ([] when there is none)."""
    patch = response["response"].get("patch")
    return json.loads(base64.b64decode(patch)) if patch else []


def mutate_via_http(client: httpx.Client, pod: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST a review for ``pod`` to /mutate; returns (patched pod, response review)."""
    reply = client.post("/mutate", json=review_for(pod, **kwargs))
    reply.raise_for_status()
    review = reply.json()
    return apply_patch(pod, decode_patch(review)), review


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


_RECORD_SWITCHES = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """Put back the handlers, levels and propagation of the root and uvicorn loggers, and the
    module's record switches, which ``setup_logging`` changes process-wide."""
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    switches = {name: getattr(logging, name) for name in _RECORD_SWITCHES}
    try:
        yield
    finally:
        for name, value in switches.items():
            setattr(logging, name, value)
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
