"""The env-only endpoint: node, or a strictly checked http(s) URL; never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core.endpoint import MAX_URL_LENGTH, NODE_ENDPOINT, AppEndpoint, parse_endpoint, redacted


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("http://otel-gateway.observability.svc:4318", "http://otel-gateway.observability.svc:4318"),
        ("https://gateway.example", "https://gateway.example"),
        ("HTTPS://Gateway.Example:443/otlp", "https://Gateway.Example:443/otlp"),
        ("http://10.0.0.7:4317", "http://10.0.0.7:4317"),
        ("http://[fd00::1]:4318", "http://[fd00::1]:4318"),
        ("http://[::1]", "http://[::1]"),
        ("  http://collector:4318/v1%2Fx/  ", "http://collector:4318/v1%2Fx/"),
    ],
)
def test_urls_that_are_used(value: str, url: str) -> None:
    assert parse_endpoint(value) == (AppEndpoint("url", url), "")


def test_node() -> None:
    assert parse_endpoint("node") == (NODE_ENDPOINT, "")
    assert parse_endpoint(" node ") == (NODE_ENDPOINT, "")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "is empty"),
        ("Node", "is neither node nor an http:// or https:// URL"),
        ("gateway:4317", "is neither node nor an http:// or https:// URL"),
        ("grpc://gateway:4317", "is neither node nor an http:// or https:// URL"),
        ("http://user:pw@gateway:4318", "contains user info"),
        ("http://$(HOST):4318", "contains $, which the kubelet would expand"),
        ("http://gateway:4318/?x=1", "has a query or fragment"),
        ("http://gateway:4318#f", "has a query or fragment"),
        ("http://gateway:0", "has an invalid port"),
        ("http://gateway:65536", "has an invalid port"),
        ("http://gateway:", "has an invalid port"),
        ("http://gateway:43a", "has an invalid port"),
        ("http://", "has an invalid host"),
        ("http://under_score:4318", "has an invalid host"),
        ("http://-lead.example", "has an invalid host"),
        ("http://10.0.0.999:4318", "has an invalid host"),
        ("http://a b:4318", "has an invalid host"),
        ("http://gate\nway", "has an invalid host"),
        ("http://[fd00::1", "has an unclosed [ in its host"),
        ("http://[not-v6]:4318", "has an invalid IPv6 address"),
        ("http://[fe80::1%eth0]:4318", "has an invalid IPv6 address"),
        ("http://[::1]x", "has an invalid host"),
        ("http://gateway/a b", "has an invalid path"),
        ("http://gateway/%zz", "has an invalid path"),
        ("http://" + "a" * 600, f"is longer than {MAX_URL_LENGTH} characters"),
    ],
)
def test_what_is_rejected_and_why(value: str, why: str) -> None:
    assert parse_endpoint(value) == (None, why)


def test_node_urls_follow_the_protocol() -> None:
    assert NODE_ENDPOINT.url_for("grpc") == "http://$(OTEL_NODE_IP):4317"
    assert NODE_ENDPOINT.url_for("http/protobuf") == "http://$(OTEL_NODE_IP):4318"
    assert NODE_ENDPOINT.url_for("http/json") == "http://$(OTEL_NODE_IP):4318"
    assert NODE_ENDPOINT.needs_node_ip
    assert NODE_ENDPOINT.recorded == "node"
    gateway = AppEndpoint("url", "http://gw:4318")
    assert gateway.url_for("grpc") == "http://gw:4318"
    assert not gateway.needs_node_ip
    assert gateway.recorded == "http://gw:4318"


def test_credentials_never_reach_a_message() -> None:
    assert redacted("https://user:secret@gateway:4318/x") == "https://***@gateway:4318/x"
    assert redacted("http://gateway/a@b") == "http://gateway/a@b"  # an @ in the path is no user info
    assert len(redacted("http://" + "a" * 1000)) == 64


@given(st.text(max_size=80))
def test_never_raises_and_what_passes_is_safe(value: str) -> None:
    endpoint, why = parse_endpoint(value)
    assert (endpoint is None) == bool(why)
    if endpoint is not None and endpoint.url:
        assert not any(c in endpoint.url for c in "$@?# \n\t")
        assert endpoint.url.startswith(("http://", "https://"))
