"""The Kubernetes API client of the cluster layer: bounded plain-JSON requests and watch
streams over the ``kubernetes`` package's connection.

Objects are the dictionaries the API server sends (:mod:`webhook.cluster.objects`), never
the package's typed models, so nothing this code does not know is dropped on a write-back.

The ``kubernetes`` package is used for what it does well: reading a kubeconfig or the
in-cluster service account (with token refresh), TLS, the auth headers
(``ApiClient.param_serialize``) and the urllib3 connection pool. The request itself goes
to that pool directly, because the generated API methods cannot do three things this layer
needs: send a JSON-patch body as the exact bytes given (the client rewrites a
``application/json-patch+json`` body that is not a list), give every request its own
timeout without urllib3's retries, and hand back a watch response that another thread can
shut down mid-read (:meth:`Kube.watch`'s ``on_open``, which the informer's bounded stop uses).

* :func:`load_api_client` picks the credentials: ``settings.kubeconfig`` when set, else the
  in-cluster service account when running in a pod, else ``$KUBECONFIG`` or
  ``~/.kube/config``.
* :class:`Kube` does bounded requests (``get``, ``create``, ``replace``, patches,
  ``delete`` with preconditions, paginated ``list``) and ``watch`` streams. Errors are one
  exception type, :class:`ApiError`, with the HTTP status (0: the server was not reached).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import NoOpTracer, Tracer

from webhook.cluster.objects import JSONDict
from webhook.telemetry.controllerspans import ApiCall

log = logging.getLogger("webhook.cluster.client")

#: Bound of one ordinary request (connect + read), seconds.
REQUEST_TIMEOUT = 10.0
#: The server ends a watch after a random time in this range, so watches of many replicas
#: do not all re-list at once; the client's read timeout is a little longer.
WATCH_SECONDS = (240, 300)
FIELD_MANAGER = "otel-injector"
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class ApiError(Exception):
    """A request to the API server failed. ``status`` is the HTTP status, or 0 when the
    server was not reached (connection refused, timeout, TLS)."""

    def __init__(self, status: int, message: str, *, reason: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        """404: the object (or its namespace) does not exist."""
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """409: it already exists, or the resourceVersion/precondition did not match."""
        return self.status == 409

    @property
    def gone(self) -> bool:
        """410: the watch's resourceVersion is too old; list again."""
        return self.status == 410


def in_cluster() -> bool:
    """Whether this process runs in a pod with a service account token."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and _SERVICE_ACCOUNT_TOKEN.is_file()


def load_api_client(kubeconfig: str = "") -> Any:
    """A ``kubernetes.client.ApiClient``: ``kubeconfig`` when given, else in-cluster
    credentials in a pod, else ``$KUBECONFIG`` or ``~/.kube/config``.

    Raises :class:`ApiError` (status 0) when no credentials can be found."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if not kubeconfig and in_cluster():
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            path = kubeconfig or os.environ.get("KUBECONFIG") or None
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, client_configuration=configuration, persist_config=False
            )
    except (config.ConfigException, OSError, TypeError) as err:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config or the in-cluster service account"
        raise ApiError(0, f"no Kubernetes credentials from {where}: {err}") from None
    # Watches hold a connection each; leave room for the ordinary requests beside them.
    configuration.connection_pool_maxsize = 16
    return client.ApiClient(configuration)


class Kube:
    """Plain-JSON access to the API server through one ``ApiClient``. Thread-safe.

    Writes carry ``fieldManager`` (``field_manager``), which names this program in each
    object's managedFields. Under a controller's span each request is a client span of
    ``tracer`` whose ``traceparent`` goes to the apiserver
    (:class:`~webhook.telemetry.controllerspans.ApiCall`)."""

    def __init__(
        self,
        api_client: Any,
        *,
        field_manager: str = FIELD_MANAGER,
        timeout: float = REQUEST_TIMEOUT,
        tracer: Tracer | None = None,
    ):
        self.api_client = api_client
        self.field_manager = field_manager
        self.timeout = timeout
        self.tracer: Tracer = tracer or NoOpTracer()
        # server.address/port of the client spans, from the configured apiserver URL.
        host = urlsplit(str(getattr(getattr(api_client, "configuration", None), "host", "") or ""))
        self._server = (host.hostname or "", host.port)

    @classmethod
    def connect(cls, kubeconfig: str = "", **kwargs: Any) -> Kube:
        """A client with the credentials :func:`load_api_client` finds."""
        return cls(load_api_client(kubeconfig), **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self.api_client.close()

    # -- requests ---------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        trace_headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; returns the urllib3 response, unread. Raises ApiError(0) when
        the server cannot be reached."""
        import urllib3

        headers = {"Accept": "application/json", "Content-Type": content_type, **(trace_headers or {})}
        try:
            _, url, headers, _, _ = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query) or None,
                header_params=headers,
                auth_settings=["BearerToken"],
            )
            # The JSON is encoded here, so the client sends these exact bytes whatever
            # the content type (it rewrites JSON-patch bodies that are not lists).
            payload = None if body is None else json.dumps(body).encode()
            response = self.api_client.rest_client.pool_manager.request(
                method,
                url,
                body=payload,
                headers=headers,
                timeout=_urllib3_timeout(timeout if timeout is not None else self.timeout),
                preload_content=False,
                retries=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ApiError(0, f"{method} {path}: {type(err).__name__}: {err}") from None
        except Exception as err:  # the client's own errors (token refresh, TLS setup)
            if type(err).__module__.startswith("kubernetes"):
                raise ApiError(0, f"{method} {path}: {err}") from None
            raise
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSONDict:
        """One bounded request; returns the parsed JSON answer. Raises :class:`ApiError`."""
        import urllib3

        with ApiCall(self.tracer, method, path, *self._server) as call:
            try:
                response = self._send(
                    method, path, query=query, body=body, content_type=content_type, trace_headers=call.headers
                )
            except ApiError:
                call.status(0)
                raise
            call.status(response.status)
            try:
                data = response.read()
            except (urllib3.exceptions.HTTPError, OSError) as err:
                raise ApiError(0, f"{method} {path}: {type(err).__name__}: {err}") from None
            finally:
                response.release_conn()
        if not 200 <= response.status < 300:
            raise _api_error(response.status, data, f"{method} {path}")
        if not data:
            return {}
        parsed = json.loads(data)
        return parsed if isinstance(parsed, dict) else {"items": parsed}

    def get(self, path: str) -> JSONDict:
        """GET an object."""
        return self.request("GET", path)

    def get_or_none(self, path: str) -> JSONDict | None:
        """GET an object; ``None`` when it does not exist."""
        try:
            return self.get(path)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    def _write_query(self) -> list[tuple[str, str]]:
        return [("fieldManager", self.field_manager)]

    def create(self, collection_path: str, body: Mapping[str, Any]) -> JSONDict:
        """POST ``body`` to a collection. 409 (:attr:`ApiError.conflict`) when it exists."""
        return self.request("POST", collection_path, query=self._write_query(), body=body)

    def replace(self, path: str, body: Mapping[str, Any]) -> JSONDict:
        """PUT ``body``; with ``metadata.resourceVersion`` set this is a compare-and-swap
        that fails with 409 when someone else wrote first."""
        return self.request("PUT", path, query=self._write_query(), body=body)

    def json_patch(self, path: str, operations: Sequence[Mapping[str, Any]]) -> JSONDict:
        """Apply an RFC 6902 JSON patch (a ``test`` operation makes it conditional)."""
        return self.request(
            "PATCH", path, query=self._write_query(), body=list(operations), content_type="application/json-patch+json"
        )

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> JSONDict:
        """Apply an RFC 7386 JSON merge patch."""
        return self.request(
            "PATCH", path, query=self._write_query(), body=patch, content_type="application/merge-patch+json"
        )

    def delete(self, path: str, *, uid: str | None = None, resource_version: str | None = None) -> bool:
        """DELETE, only if the object still has ``uid``/``resource_version`` when given.
        Returns False when it was already gone; 409 when the precondition failed."""
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions} if preconditions else None
        try:
            self.request("DELETE", path, body=body)
        except ApiError as err:
            if err.not_found:
                return False
            raise
        return True

    def list(
        self, collection_path: str, *, label_selector: str = "", field_selector: str = "", page: int = 500
    ) -> tuple[list[JSONDict], str]:
        """All objects of a collection, page by page; returns (items, resourceVersion)."""
        items: list[JSONDict] = []
        token = ""
        while True:
            query = [("limit", str(page))]
            query += [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
            if token:
                query.append(("continue", token))
            answer = self.request("GET", collection_path, query=query)
            items.extend(i for i in answer.get("items") or [] if isinstance(i, dict))
            metadata = answer.get("metadata") or {}
            token = str(metadata.get("continue") or "")
            if not token:
                return items, str(metadata.get("resourceVersion") or "")

    def watch(
        self,
        collection_path: str,
        *,
        resource_version: str,
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int | None = None,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Iterator[tuple[str, JSONDict]]:
        """Stream ``(type, object)`` watch events from ``resource_version``.

        Types are ADDED, MODIFIED, DELETED and BOOKMARK. The stream ends when the server
        closes it (after ``timeout_seconds``); an ERROR event raises :class:`ApiError`
        (410 when the resourceVersion is too old). ``on_open`` receives a function that
        closes the stream from another thread."""
        import urllib3

        seconds = timeout_seconds or random.randint(*WATCH_SECONDS)  # noqa: S311 - jitter, not secrets
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(seconds)),
        ]
        query += [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
        response = self._send("GET", collection_path, query=query, timeout=(self.timeout, seconds + 30))
        try:
            if not 200 <= response.status < 300:
                raise _api_error(response.status, response.read(), f"watch {collection_path}")
            if on_open is not None:
                on_open(lambda: _shutdown(response))
            for line in response:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = str(event.get("type") or ""), event.get("object") or {}
                if kind == "ERROR":
                    code = int(obj.get("code") or 500) if isinstance(obj, dict) else 500
                    raise ApiError(code, str(obj.get("message") or obj), reason=str(obj.get("reason") or ""))
                if isinstance(obj, dict):
                    yield kind, obj
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            raise ApiError(0, f"watch {collection_path}: {type(err).__name__}: {err}") from None
        finally:
            # Closed first: a connection with unread watch data must not be reused.
            response.close()
            response.release_conn()


def _shutdown(response: Any) -> None:
    # shutdown() unblocks a thread reading the socket; close() alone may not.
    shutdown = getattr(response, "shutdown", None)
    if callable(shutdown):
        shutdown()
    response.close()


def _urllib3_timeout(timeout: float | tuple[float, float]) -> Any:
    import urllib3

    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(connect=timeout, read=timeout)


def _api_error(status: int, data: bytes, what: str) -> ApiError:
    message, reason = data.decode("utf-8", errors="replace")[:500], ""
    try:
        parsed = json.loads(data)
        if isinstance(parsed, dict):
            message, reason = str(parsed.get("message") or message), str(parsed.get("reason") or "")
    except ValueError:
        pass
    return ApiError(status, f"{what}: {message}", reason=reason)
