"""How a test or the demo talks to a running cluster: kubectl, the apiserver, Jaeger.

:class:`ClusterAccess` is the part of :class:`~bench.localcluster.controlplane.ControlPlane`
that only reads its addresses and credentials; it works the same whether the cluster runs on
the machine's loopback or in the run's network namespace behind loopback relays.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.localcluster import binaries as _binaries
from bench.localcluster import components
from bench.localcluster.process import ControlPlaneError


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}\nstdout:\n{self.output}"


class ClusterAccess:
    """kubectl and HTTP helpers over the attributes a started cluster sets."""

    binaries: _binaries.Binaries
    kubeconfig: Path
    server_url: str
    ca_cert_path: Path
    admin_cert_path: Path
    admin_key_path: Path
    jaeger_query_url: str
    _ssl: ssl.SSLContext | None = None

    # -- kubectl --------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane as the admin.

        Returns the completed process with text stdout/stderr. With ``check`` a non-zero
        exit raises :class:`KubectlError` (its message includes stderr). ``timeout``
        bounds the call.
        """
        argv = [str(self.binaries.kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    # -- HTTP helpers ---------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the cluster CA and presents the admin certificate."""
        if self._ssl is None:
            ctx = ssl.create_default_context(cafile=str(self.ca_cert_path))
            ctx.load_cert_chain(str(self.admin_cert_path), str(self.admin_key_path))
            self._ssl = ctx
        return self._ssl

    def api_get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET ``path`` from the apiserver as the admin; return (status, body)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", int(self.server_url.rsplit(":", 1)[1]), context=self.ssl_context(), timeout=timeout
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def jaeger_api(self, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` (e.g. ``/api/services``) from Jaeger's query API; return the parsed JSON.

        Raises ControlPlaneError for a non-200 answer.
        """
        conn = http.client.HTTPConnection("127.0.0.1", int(self.jaeger_query_url.rsplit(":", 1)[1]), timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise ControlPlaneError(f"Jaeger GET {path}: HTTP {resp.status}: {body[:500]!r}")
        return json.loads(body)

    def kubeconfig_text(
        self, user: str, credentials: Mapping[str, str], *, cluster: str = "bench", context: str = "bench"
    ) -> str:
        """A kubeconfig for this control plane with one ``user`` (its ``credentials``, e.g.
        ``{"token": ...}``), named ``cluster`` and ``context``."""
        return components.kubeconfig(
            self.server_url, self.ca_cert_path, user, credentials, cluster=cluster, context=context
        )
