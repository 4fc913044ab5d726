"""Helpers for the install tests: rendering the chart, reading what the rendered
Deployment asks for, a ServiceAccount kubeconfig and TLS probes.

Everything the injector process is started with comes from the rendered chart (the
Deployment's command, args, env and readiness probe; the Service and webhook names), so a
chart change that breaks the install breaks these tests.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.localcluster.controlplane import ControlPlane, ManagedProcess
from bench.localcluster.injector import https_get
from tests.deploy.support import NAMESPACE, RELEASE, Objects, find

__all__ = ["NAMESPACE", "RELEASE", "Objects", "find"]


def dump(objects: Objects) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def get_json(cp: ControlPlane, *args: str) -> Any:
    """``kubectl get ... -o json`` as the admin; ``None`` when the object does not exist."""
    result = cp.kubectl("get", *args, "-o", "json", "--ignore-not-found", check=True)
    return json.loads(result.stdout) if result.stdout.strip() else None


def list_json(cp: ControlPlane, *args: str) -> list[dict[str, Any]]:
    """The ``items`` of ``kubectl get <kind> ... -o json`` as the admin."""
    items: list[dict[str, Any]] = json.loads(cp.kubectl("get", *args, "-o", "json").stdout)["items"]
    return items


@dataclass(frozen=True)
class Release:
    """The objects of the installed release and what the tests read from them."""

    objects: Objects

    @property
    def namespace(self) -> str:
        return str(self.deployment["metadata"]["namespace"])

    @property
    def deployment(self) -> dict[str, Any]:
        return find(self.objects, "Deployment")

    @property
    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.deployment["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, "the injector Deployment has one container"
        return containers[0]

    @property
    def service_account(self) -> str:
        return str(self.deployment["spec"]["template"]["spec"]["serviceAccountName"])

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def webhook_configuration(self) -> dict[str, Any]:
        return find(self.objects, "MutatingWebhookConfiguration")

    @property
    def service_ref(self) -> dict[str, Any]:
        """The one ``clientConfig.service`` every webhook of the configuration uses."""
        refs = [hook["clientConfig"]["service"] for hook in self.webhook_configuration["webhooks"]]
        assert all(ref == refs[0] for ref in refs), refs
        return dict(refs[0])

    @property
    def service_host(self) -> str:
        """The DNS name the apiserver dials and checks the serving certificate for."""
        ref = self.service_ref
        return f"{ref['name']}.{ref['namespace']}.svc"

    def pod_env(self, pod_name: str) -> dict[str, str]:
        """The container's env as the kubelet would set it for a pod named ``pod_name``."""
        fields = {"metadata.namespace": self.namespace, "metadata.name": pod_name}
        env: dict[str, str] = {}
        for item in self.container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            path = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if path not in fields:
                pytest.fail(
                    f"the chart sets {item['name']} from {item.get('valueFrom')}, which this test cannot supply"
                )
            env[item["name"]] = fields[path]
        return env

    def setting(self, name: str) -> str:
        """A plain ``value`` env entry of the container (e.g. ``OTEL_INJECTOR_CERT_SECRET``)."""
        for item in self.container.get("env", []):
            if item["name"] == name and "value" in item:
                return str(item["value"])
        raise AssertionError(f"the chart's Deployment does not set {name}")

    def local_argv(self, *, port: int, cert_dir: Path) -> list[str]:
        """The container's command and args, with the port and certificate paths of this
        machine and a loopback bind address; every other argument is kept as rendered."""
        command = list(self.container["command"])
        executable = Path(sys.executable).parent / command[0]
        assert executable.is_file(), f"the chart runs {command[0]!r}, which the project does not install"
        replacements = {
            "--port": str(port),
            "--tls-cert": str(cert_dir / "tls.crt"),
            "--tls-key": str(cert_dir / "tls.key"),
        }
        args = list(self.container.get("args", []))
        for index, arg in enumerate(args[:-1]):
            if arg in replacements:
                args[index + 1] = replacements[arg]
        missing = [flag for flag in replacements if flag not in args]
        assert not missing, f"the chart's args lack {missing}: {args}"
        return [str(executable), *command[1:], *args, "--bind-address", "127.0.0.1"]


def write_token_kubeconfig(cp: ControlPlane, path: Path, token: str, user: str) -> Path:
    """A kubeconfig for the control plane that authenticates with ``token`` only."""
    path.write_text(cp.kubeconfig_text(user, {"token": token}, cluster="local", context=user), encoding="utf-8")
    path.chmod(0o600)
    return path


def kubectl_as(cp: ControlPlane, kubeconfig: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The built kubectl with ``kubeconfig`` (not the admin's)."""
    argv = [str(cp.binaries.kubectl), "--kubeconfig", str(kubeconfig), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class Injector:
    """``otel-injector serve`` running on this machine as the chart's ServiceAccount."""

    process: ManagedProcess
    port: int
    cert_dir: Path
    env: dict[str, str]
    pod_name: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def secret_material(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}


def tls_probe(
    port: int, *, ca_pem: bytes, server_hostname: str, path: str = "/readyz", timeout: float = 3.0
) -> tuple[int, bytes]:
    """GET ``path`` over TLS verified against ``ca_pem`` for ``server_hostname`` (as the
    apiserver verifies a webhook); returns (status, peer certificate DER)."""
    return https_get(port, path, ca_context(ca_pem), server_hostname, timeout=timeout)


def ca_context(ca_pem: bytes) -> ssl.SSLContext:
    """Trusts exactly ``ca_pem``, as the apiserver does through a webhook's caBundle."""
    return ssl.create_default_context(cadata=ca_pem.decode("ascii"))


def can_i(cp: ControlPlane, kubeconfig: Path, query: Sequence[str]) -> str:
    """``kubectl auth can-i`` as the kubeconfig's user: "yes" or "no"."""
    result = kubectl_as(cp, kubeconfig, "auth", "can-i", *query)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(query)}: {result.stdout!r} {result.stderr!r}"
    return answer


# --- audit ------------------------------------------------------------------------------

#: Metadata of every request made by a ServiceAccount, nothing else: the evidence of what
#: the injector's identity asked for and whether it was allowed.
#: The user agent of the tests' own Python client requests with the ServiceAccount token.
TEST_USER_AGENT = "otel-injector-install-tests"

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


@dataclass(frozen=True)
class Request:
    """One request of the audit log, reduced to what RBAC decides on."""

    verb: str
    api_group: str
    resource: str
    namespace: str
    name: str
    code: int
    decision: str
    user_agent: str
    uri: str

    @property
    def by_tests(self) -> bool:
        """Made by the tests themselves (kubectl's ``auth can-i`` and the like, or
        :data:`TEST_USER_AGENT`), not by the injector process."""
        return self.user_agent.startswith(("kubectl/", TEST_USER_AGENT))

    def describe(self) -> str:
        if not self.resource:
            return f"{self.verb} {self.uri}"
        group = f".{self.api_group}" if self.api_group else ""
        scope = f"{self.namespace}/" if self.namespace else "cluster/"
        return f"{self.verb} {self.resource}{group} {scope}{self.name}".rstrip("/")


def audited_requests(log: Path, username: str) -> list[Request]:
    """The completed requests of ``username`` in the apiserver's JSON audit log."""
    requests: list[Request] = []
    if not log.is_file():
        return requests
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or event.get("user", {}).get("username") != username:
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        requests.append(
            Request(
                verb=event["verb"],
                api_group=ref.get("apiGroup", ""),
                resource=resource,
                namespace=ref.get("namespace", ""),
                name=ref.get("name", ""),
                code=int(event.get("responseStatus", {}).get("code", 0)),
                decision=event.get("annotations", {}).get("authorization.k8s.io/decision", ""),
                user_agent=event.get("userAgent", ""),
                uri=event.get("requestURI", ""),
            )
        )
    return requests


def unused_grants(rules: Sequence[Mapping[str, Any]], namespace: str, requests: Sequence[Request]) -> list[str]:
    """Each (group, resource, verb[, name]) that ``rules`` grant (in ``namespace``, or
    cluster-wide when it is empty) and no allowed request used."""
    allowed = [r for r in requests if r.decision == "allow"]
    unused = []
    for rule in rules:
        names = rule.get("resourceNames") or [""]
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in names:
                        used = any(
                            r.api_group == group
                            and r.resource == resource
                            and r.verb == verb
                            and (not name or r.name == name)
                            and (not namespace or r.namespace == namespace)
                            for r in allowed
                        )
                        if not used:
                            where = f" in {namespace}" if namespace else ""
                            label = f"{resource}.{group}" if group else resource
                            unused.append(f"{verb} {label}{f'/{name}' if name else ''}{where}")
    return unused
