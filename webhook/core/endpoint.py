"""Where an env-only pod (``otel-injector.io/sidecar-mode: none``) sends its telemetry.

The value of ``otel-injector.io/endpoint``, or the default ``env_only_endpoint`` setting
(chart value ``injection.endpoint``), is one of:

* ``node``: the node's collector (a DaemonSet with a ``hostPort``, or a node agent). The
  address is only known once the pod is scheduled, so the app gets the downward-API helper
  ``OTEL_NODE_IP`` (``status.hostIP``, the name the OpenTelemetry Operator uses) and an
  endpoint that references it, ``http://$(OTEL_NODE_IP):4318`` (4317 for grpc). The
  kubelet expands ``$(VAR)`` only from variables defined *earlier* in the container's env,
  so the helper is placed before the endpoint; a user's own ``OTEL_NODE_IP`` comes first
  in the list anyway, and then it is theirs that is used. An IPv6 node IP would need
  brackets that ``$(VAR)`` cannot add: use a URL on IPv6-only clusters.
* an ``http://`` or ``https://`` URL, such as a gateway Service,
  ``http://otel-gateway.observability.svc:4318``. It is checked strictly (below), because
  it is copied into every container's env and ends up in the SDK's exporter.

Contract: :func:`parse_endpoint` never raises; a value it cannot use gives ``None`` and a
reason, and the caller falls back to a sidecar with a warning. Pure, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from webhook.core import names

NODE = "node"
#: The downward-API helper that carries the node's IP (``status.hostIP``).
NODE_IP_ENV = "OTEL_NODE_IP"
NODE_IP_FIELD = "status.hostIP"
#: Longest endpoint URL accepted. A Service URL is far shorter (a 253-character host, a
#: port and a short path); the cap bounds what is copied into every container.
MAX_URL_LENGTH = 512

_SCHEME = re.compile(r"^(https?)://", re.IGNORECASE)
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*$", re.IGNORECASE
)
_PORT = re.compile(r"^[0-9]{1,5}$")
# Unreserved characters, "/" and percent-escapes: enough for a path prefix behind a
# gateway, and nothing the kubelet ($) or a shell or YAML reader would interpret.
_PATH = re.compile(r"^(?:/(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*)*$")


@dataclass(frozen=True)
class AppEndpoint:
    """A validated env-only endpoint: ``node`` (``url`` empty), or a URL."""

    kind: str  # NODE or "url"
    url: str = ""

    @property
    def recorded(self) -> str:
        """What the status record keeps: ``node`` or the URL."""
        return self.url or NODE

    def url_for(self, protocol: str | None) -> str:
        """The ``OTEL_EXPORTER_OTLP_ENDPOINT`` value. For ``node``, the standard OTLP port
        of ``protocol`` (4317 for grpc, 4318 for the HTTP ones; unknown: 4318, the
        default protocol's) on ``$(OTEL_NODE_IP)``; a URL is used as it is."""
        if self.url:
            return self.url
        port = names.OTLP_GRPC_PORT if protocol == "grpc" else names.OTLP_HTTP_PORT
        return f"http://$({NODE_IP_ENV}):{port}"

    @property
    def needs_node_ip(self) -> bool:
        """Whether the endpoint references the ``OTEL_NODE_IP`` helper."""
        return not self.url


NODE_ENDPOINT = AppEndpoint(NODE)


def parse_endpoint(value: str) -> tuple[AppEndpoint | None, str]:
    """``(endpoint, "")`` for a usable value, ``(None, why)`` otherwise. Never raises.

    A URL must be ``http`` or ``https``; the host a DNS name (lower case, as Kubernetes
    names are), an IPv4 address or a bracketed IPv6 address; an optional port 1-65535; an
    optional path of unreserved characters and percent-escapes. Rejected, each with its
    reason: user info (credentials do not belong in a pod spec), a query or fragment
    (the SDK appends ``/v1/traces`` to the path), ``$`` (the kubelet would expand
    ``$(VAR)``), whitespace and control characters, and anything over
    :data:`MAX_URL_LENGTH` characters.
    """
    text = value.strip()
    if text == NODE:
        return NODE_ENDPOINT, ""
    if not text:
        return None, "is empty"
    if len(text) > MAX_URL_LENGTH:
        return None, f"is longer than {MAX_URL_LENGTH} characters"
    scheme = _SCHEME.match(text)
    if scheme is None:
        return None, "is neither node nor an http:// or https:// URL"
    rest = text[scheme.end() :]
    for char, why in (("$", "contains $, which the kubelet would expand"), ("@", "contains user info")):
        if char in rest:
            return None, why
    if "?" in rest or "#" in rest:
        return None, "has a query or fragment"
    authority, slash, path = rest.partition("/")
    problem = _authority_problem(authority) or ("" if _PATH.match(slash + path) else "has an invalid path")
    if problem:
        return None, problem
    return AppEndpoint("url", scheme[1].lower() + "://" + rest), ""


def redacted(value: str) -> str:
    """``value`` for a message, cut to 64 characters, with any user info (a password in a
    URL) replaced by ``***``: warnings reach kubectl, logs and spans."""
    scheme, sep, rest = value.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        value = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return value if len(value) <= 64 else value[:61] + "..."


def _authority_problem(authority: str) -> str:
    if authority.startswith("["):
        host, bracket, after = authority[1:].partition("]")
        if not bracket:
            return "has an unclosed [ in its host"
        if "%" in host or not _is_ip(host, ipaddress.IPv6Address):  # no zone ids: they name a local interface
            return "has an invalid IPv6 address"
        if after and not after.startswith(":"):
            return "has an invalid host"
        has_port, port = bool(after), after[1:]
    else:
        host, colon, port = authority.partition(":")
        has_port = bool(colon)
        # A name whose last label is all digits is an IPv4 address or nothing (no TLD is numeric).
        numeric = host.rsplit(".", 1)[-1].isdigit()
        if not (_is_ip(host, ipaddress.IPv4Address) if numeric else _DNS_NAME.match(host)):
            return "has an invalid host"
    if has_port and not (_PORT.match(port) and 0 < int(port) < 65536):
        return "has an invalid port"
    return ""


def _is_ip(host: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> bool:
    try:
        kind(host)
    except ValueError:
        return False
    return True
