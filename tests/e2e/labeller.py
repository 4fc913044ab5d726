"""A tiny test-only mutating webhook that adds a label to pods.

Registered after otel-injector (webhooks run in name order), its change makes the
apiserver call otel-injector again (``reinvocationPolicy: IfNeeded``), which must then
add nothing.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bench.localcluster.controlplane import ControlPlane
from webhook.tls.certs import generate_bundle


@contextmanager
def running_labeller(cp: ControlPlane, tmp: Path, *, namespace: str) -> Iterator[Callable[[], int]]:
    """Serve and register the labeller for pods in ``namespace``; yields a call counter."""
    calls = 0
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal calls
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            pod: dict[str, Any] = review["request"]["object"]
            labels = pod["metadata"].get("labels")
            if labels is None:
                ops = [{"op": "add", "path": "/metadata/labels", "value": {"labelled-by": "second-webhook"}}]
            else:
                ops = [{"op": "add", "path": "/metadata/labels/labelled-by", "value": "second-webhook"}]
            with lock:
                calls += 1
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": review["request"]["uid"],
                        "allowed": True,
                        "patchType": "JSONPatch",
                        "patch": base64.b64encode(json.dumps(ops).encode()).decode(),
                    },
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    bundle = generate_bundle(["localhost"], ["127.0.0.1"])
    bundle.write(tmp)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp / "tls.crt"), str(tmp / "tls.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = f"zz-labeller-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "labeller.e2e.otel-injector.io",
                "clientConfig": {"url": f"https://127.0.0.1:{server.server_address[1]}/", "caBundle": bundle.ca_bundle},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 5,
            }
        ],
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        yield lambda: calls
    finally:
        cp.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
        server.shutdown()
        server.server_close()
