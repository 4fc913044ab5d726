"""One real control plane per session, the chart installed into it, and ``otel-injector
serve`` running under the chart's own ServiceAccount.

How the pieces stand in for what a cluster has and this machine lacks:

* **Identity.** The process authenticates with a real ServiceAccount token from the
  TokenRequest API (``kubectl create token``), which is what a pod's projected token is.
  A kubeconfig with impersonation (``as:``/``as-groups:``) would not do: the Python
  ``kubernetes`` client ignores those keys, so the process would silently run as the
  admin. ``test_identity`` proves the credential the process uses is the ServiceAccount.
* **Routing.** The chart's MutatingWebhookConfiguration points at its Service, and the
  self-managed certificate names only ``<service>.<ns>.svc``; without kube-proxy and DNS
  the apiserver cannot reach it. The apiserver is started with ``HTTPS_PROXY`` set to a
  CONNECT proxy (:mod:`tests.install.proxy`) that sends ``<service>.<ns>.svc:443`` to the
  local process. So the webhook configuration stays exactly as the chart rendered it, plus
  the caBundle the process patched in itself, and the apiserver verifies the serving
  certificate for the Service name as in a cluster. (A ``url: https://127.0.0.1:<port>``
  override would fail that verification: the certificate has no IP address.)
* **Pod.** The container's command, args, env (``fieldRef`` resolved as the kubelet would)
  and readiness probe come from the rendered Deployment; only the port, the certificate
  paths (an emptyDir in the pod) and a loopback bind address are local, plus ``KUBECONFIG``
  for the token and ``OTEL_INJECTOR_CERT_SYNC_SECONDS=1`` so a forced renewal is picked up
  within the test's patience instead of the 30 s default.
* **Evidence.** The apiserver writes an audit log of every ServiceAccount request;
  ``test_injector`` asserts none of the process's requests was denied, and the session
  summary lists what the process used and which grants it never used.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.localcluster.controlplane import ControlPlane, free_port
from bench.localcluster.injector import https_ready
from tests.deploy.support import find_helm, helm_template, parse_stream
from tests.install.proxy import ServiceProxy, running_proxy
from tests.install.support import (
    AUDIT_POLICY,
    NAMESPACE,
    Injector,
    Release,
    audited_requests,
    ca_context,
    find,
    get_json,
    secret_material,
    unused_grants,
    write_token_kubeconfig,
)

#: What this install runs with: the fixture fails unless the rendered Deployment's env
#: already says so (nothing here overrides the chart).
REQUIRED_ENV = {
    "OTEL_INJECTOR_RECONCILE": "true",
    "OTEL_INJECTOR_CERT_MODE": "self-managed",
    "OTEL_INJECTOR_LEADER_ELECTION": "true",
}
LOCAL_POD_NAME = "otel-injector-local-0"
#: What the end-of-session RBAC summary reads.
_SESSION: dict[str, Any] = {}


@pytest.fixture(scope="session")
def helm() -> Path:
    return find_helm()


@pytest.fixture(scope="session")
def proxy() -> Iterator[ServiceProxy]:
    with running_proxy() as service_proxy:
        yield service_proxy


@pytest.fixture(scope="session")
def audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the apiserver writes the metadata of every ServiceAccount request (JSON lines).
    It outlives the control plane, so the session summary can read it."""
    directory = tmp_path_factory.mktemp("audit")
    (directory / "policy.yaml").write_text(AUDIT_POLICY, encoding="utf-8")
    path = directory / "audit.log"
    _SESSION["audit_log"] = path
    return path


@pytest.fixture(scope="session")
def control_plane(proxy: ServiceProxy, audit_log: Path) -> Iterator[ControlPlane]:
    """The control plane, its apiserver sending webhook calls through ``proxy`` and
    auditing ServiceAccount requests to ``audit_log``.

    The components inherit the environment at start; only for that moment is
    ``HTTPS_PROXY`` set. Go never proxies loopback targets, so etcd, Jaeger and the
    apiserver's own clients connect directly."""
    cp = ControlPlane(
        extra_apiserver_args=[
            f"--audit-policy-file={audit_log.parent / 'policy.yaml'}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ]
    )
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HTTP_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "no_proxy"):
            patch.delenv(name, raising=False)
        patch.setenv("HTTPS_PROXY", proxy.url)
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def release_namespace(control_plane: ControlPlane, helm: Path) -> str:
    """The chart's own Namespace object, really applied (namespaced dry-runs need it)."""
    namespace = find(parse_stream(helm_template(helm)), "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    control_plane.kubectl("apply", "--warnings-as-errors", "-f", "-", input=yaml.safe_dump(namespace))
    return NAMESPACE


@pytest.fixture(scope="session")
def release(control_plane: ControlPlane, release_namespace: str, helm: Path) -> Release:
    """Every object of ``helm template`` with default values, really applied."""
    text = helm_template(helm)
    control_plane.kubectl("apply", "--warnings-as-errors", "-f", "-", input=text)
    installed = Release(parse_stream(text))
    assert installed.namespace == release_namespace
    _SESSION["release"] = installed
    return installed


@pytest.fixture(scope="session")
def sa_kubeconfig(control_plane: ControlPlane, release: Release) -> Path:
    """A kubeconfig holding a TokenRequest token of the chart's ServiceAccount."""
    token = control_plane.kubectl(
        "create", "token", release.service_account, "-n", release.namespace, "--duration", "2h"
    ).stdout.strip()
    assert token.count(".") == 2, "TokenRequest returned no JWT"
    return write_token_kubeconfig(
        control_plane, control_plane.workdir / "serviceaccount.kubeconfig", token, release.service_account
    )


def _ready(release: Release, control_plane: ControlPlane, port: int) -> Callable[[], bool]:
    """The Deployment's readinessProbe, verified like the apiserver verifies the webhook:
    against the CA in the process's Secret, for the Service's DNS name."""
    probe = release.container["readinessProbe"]["httpGet"]
    assert probe["scheme"] == "HTTPS"

    def context() -> ssl.SSLContext | None:
        name = release.setting("OTEL_INJECTOR_CERT_SECRET")
        secret = get_json(control_plane, "secret", name, "-n", release.namespace)
        ca = secret_material(secret).get("ca.crt") if secret is not None else None
        try:
            return ca_context(ca) if ca else None
        except ssl.SSLError:  # not a CA (yet): not ready
            return None

    return https_ready(port, context, server_hostname=release.service_host, path=probe["path"], timeout=3.0)


@pytest.fixture(scope="session")
def injector(control_plane: ControlPlane, release: Release, sa_kubeconfig: Path, proxy: ServiceProxy) -> Injector:
    """``otel-injector serve`` as the chart's Deployment runs it, under the ServiceAccount."""
    env = release.pod_env(LOCAL_POD_NAME)
    wrong = {name: env.get(name) for name, value in REQUIRED_ENV.items() if env.get(name) != value}
    assert not wrong, f"the chart's Deployment env differs from what the install needs: {wrong}"
    assert env["POD_NAMESPACE"] == release.namespace
    port = free_port()
    cert_dir = control_plane.workdir / "injector-certs"
    env.update(
        KUBECONFIG=str(sa_kubeconfig),
        OTEL_INJECTOR_CERT_SYNC_SECONDS="1",
    )
    proxy.route(f"{release.service_host}:{release.service_ref['port']}", port)
    name = "otel-injector-sa"
    process = control_plane.start_process(
        name,
        release.local_argv(port=port, cert_dir=cert_dir),
        env,
        ready=_ready(release, control_plane, port),
        timeout=90,
    )
    return Injector(
        process=process,
        port=port,
        cert_dir=cert_dir,
        env=env,
        pod_name=LOCAL_POD_NAME,
        log_path=control_plane.workdir / f"{name}.log",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the injector process asked the apiserver for as the chart's ServiceAccount in
    this session (the tests' own kubectl calls with its token left out), and which
    of its grants went unused (a least-privilege hint, not a verdict: a short session does
    not exercise every path, e.g. an Event is only recorded on a refused ConfigMap)."""
    release: Release | None = _SESSION.get("release")
    log: Path | None = _SESSION.get("audit_log")
    if release is None or log is None:
        return
    requests = [r for r in audited_requests(log, release.username) if not r.by_tests]
    if not requests:
        return
    write = terminalreporter.write_line
    terminalreporter.section("requests of the injector under the chart's ServiceAccount (apiserver audit log)")
    counts: dict[str, int] = {}
    for request in requests:
        key = f"{request.decision or request.code:>5} {request.describe()}"
        counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        write(f"  {counts[key]:4d} x {key}")
    unused = [
        *unused_grants(find(release.objects, "ClusterRole")["rules"], "", requests),
        *unused_grants(find(release.objects, "Role")["rules"], release.namespace, requests),
    ]
    write("granted but not used in this session: " + (", ".join(unused) if unused else "none"))
