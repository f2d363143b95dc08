"""The XRPC dispatcher: one raw ASGI layer for every ``/xrpc/<NSID>``.

It sits in front of Quart's ``asgi_app`` (``app.asgi_app = XrpcASGI(...)``)
and is the only place that turns HTTP into an XRPC call: it assigns the
request id, applies CORS and rate limits, authenticates, decodes and
validates parameters, calls the handler and maps every failure to the XRPC
error body. Unknown NSIDs get 501, the wrong HTTP method 400 with ``Allow``,
database outages 503 and unexpected exceptions a 500 whose body says nothing
about the cause. Everything else (``_health``, ``/metrics``, did.json, 404
and 405 fallbacks) goes on to the Quart routes.

Working on the ASGI scope directly spares every XRPC call Quart's request
and response objects (werkzeug headers, MultiDicts, request contexts,
before/after hooks), which cost more than most read handlers themselves.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import structlog
import trio
import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler)

from coves.admission import ARRIVED, REASONS, AdmissionControl, LoopLag, Overloaded
from coves.atproto.syntax import is_valid_nsid
from coves.auth.base import AuthFailure, AuthInput, AuthPolicy
from coves.config import Settings
from coves.context import AppContext
from coves.db import DatabaseUnavailable, QueryTimeout
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.respcache import CachedResponse, ResponseCache
from coves.xrpc.accesslog import AccessLog, build_access_log
from coves.xrpc.ratelimit import Decision, RateLimiter, client_address, rate_limit_headers
from coves.xrpc.routing import Endpoint, RawBody, RawResponse, XRPCRequest

log = get_logger("coves.xrpc")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
EXPOSED_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After, "
    "DPoP-Nonce, WWW-Authenticate, X-Request-ID, Atproto-Repo-Rev"
)
ALLOWED_HEADERS = (
    "Authorization, Content-Type, DPoP, atproto-proxy, atproto-accept-labelers, X-Request-ID"
)
JSON = "application/json"
CLIENT_CLOSED = 499  # the access log's status for a request abandoned before any answer
_JSON_BYTES = JSON.encode()
# The methods the /xrpc/<nsid> route answers; anything else is Quart's 405.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def cors_headers(allowed: Collection[str], origin: str | None, headers: dict[str, str]) -> None:
    """Add the CORS response headers for ``origin`` when it is allowed (every
    route answers browsers the same way, XRPC or not)."""
    if not origin:
        return
    if "*" in allowed:
        headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    else:
        return
    headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


RETRY_AFTER_SECONDS = 2


def database_unavailable() -> XRPCError:
    return XRPCError(
        503,
        "NotEnoughResources",
        "the service is temporarily unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# A body that stops arriving (a stalled or trickling client) must not hold a
# request, and its admission slot, for ever: Hypercorn's keep-alive timer only
# runs until the request head is in. Quart gives its own routes the same 60 s.
BODY_TIMEOUT_SECONDS = 60.0


def too_slow() -> XRPCError:
    return XRPCError(
        408,
        "RequestTimeout",
        "the request body took too long to arrive",
        headers={"Connection": "close"},
    )


def too_large() -> XRPCError:
    # The rest of the body is still on the wire: close the connection rather
    # than parse it as the next request on a keep-alive connection.
    return XRPCError(
        413, "PayloadTooLarge", "request body is too large", headers={"Connection": "close"}
    )


_BAD_TARGET = XRPCError(400, "InvalidRequest", "the request target must be a path")


def _origin_form(scope: Scope) -> Scope | None:
    """An absolute-form request line (``GET http://host/xrpc/... HTTP/1.1``), which
    servers must accept (RFC 9112 3.2.2), as the origin-form request it stands for."""
    parts = urlsplit(scope["path"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path = parts.path or "/"
    raw = urlsplit(scope["raw_path"].decode("latin-1")).path or "/"
    return {**scope, "path": path, "raw_path": raw.encode("latin-1")}


def _merge_slashes(scope: Scope) -> _Reply:
    """``//xrpc/...``: a 308 to the one-slash path, relative, so the Location can never
    name another host (``//host/...`` would), with an XRPC body like every answer."""
    location = re.sub(r"/{2,}", "/", scope["raw_path"].decode("latin-1"))
    if scope.get("query_string"):
        location += "?" + scope["query_string"].decode("latin-1")
    body = {"error": "PermanentRedirect", "message": f"use {location.split('?', 1)[0]}"}
    return _Reply(308, orjson.dumps(body), {"Location": location})


def _shielded(send: Send) -> Send:
    """``send`` for the Quart routes, shielded from cancellation.

    Hypercorn finishes a response inside ``send``: the last body message closes
    the socket (``Connection: close``, HTTP/1.0) or re-arms the keep-alive idle
    timer. Quart-Trio cancels its request nursery as soon as it sees
    ``http.disconnect``, which Hypercorn queues from within that same ``send``,
    so the close or the re-arm was cancelled halfway and the socket stayed open
    for good. The XRPC dispatcher never reads ``receive`` after the body, so it
    does not need this.
    """

    async def send_shielded(message: MutableMapping[str, Any]) -> None:
        with trio.CancelScope(shield=True):
            await send(message)

    return send_shielded


def _refuse_nul(params: Mapping[str, list[str]]) -> None:
    """NUL is no character of any text we store (PostgreSQL refuses it): a 400, not a 500."""
    for key, values in params.items():
        if "\x00" in key or any("\x00" in value for value in values):
            name = key.replace("\x00", "\\0")
            raise XRPCError(400, "InvalidRequest", f"parameter {name!r} contains a NUL character")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class _Reply:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        content_type: bytes | None = _JSON_BYTES,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type


class _Uncacheable(Exception):
    """A handler on a cacheable endpoint returned a RawResponse: send it, keep nothing."""

    def __init__(self, reply: _Reply) -> None:
        self.reply = reply


def _error_reply(err: XRPCError, headers: dict[str, str]) -> _Reply:
    if err.headers:
        headers.update(err.headers)
    return _Reply(err.status, orjson.dumps(err.body()), headers)


class XrpcASGI:
    """ASGI callable: ``/xrpc/<nsid>`` here, every other request to ``fallback``."""

    def __init__(
        self,
        ctx: AppContext,
        table: Mapping[str, Endpoint],
        fallback: ASGIApp,
        limiter: RateLimiter,
    ) -> None:
        self.ctx = ctx
        self.table = table
        self.fallback = fallback
        settings = ctx.settings
        self.settings = settings
        self.metrics = ctx.metrics
        self.limiter = limiter
        self.lexicons = ctx.lexicons
        self.max_body = settings.max_request_body_bytes
        base = urlsplit(settings.appview_public_url)
        self.url_base = f"{base.scheme}://{base.netloc}"
        self.cache: ResponseCache = ctx.response_cache
        cap = settings.response_cache_seconds
        self.cache_ttl = {
            nsid: min(ep.cache_seconds, cap)
            for nsid, ep in table.items()
            if ep.kind == "query" and ep.cache_seconds > 0 and cap > 0
        }
        viewer_cap = settings.viewer_cache_seconds
        self.viewer_cache_ttl = {
            nsid: min(ep.viewer_cache_seconds, viewer_cap)
            for nsid, ep in table.items()
            if ep.kind == "query" and ep.viewer_cache_seconds > 0 and viewer_cap > 0
        }
        # Label children looked up once per (nsid, status), not per request.
        self._observers: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._cache_counters: dict[str, Any] = {}
        self._cache_metric = self.metrics.counter(
            "coves_response_cache_total",
            "anonymous read responses by response-cache outcome",
            ["result"],
        )
        self._auth_successes = self.metrics.counter(
            "coves_auth_successes_total", "successful authentications by method", ["method"]
        )
        self._auth_counters: dict[str, Any] = {}
        # Registered now so the family is exported (for dashboards) before the first failure.
        self.metrics.counter(
            "coves_auth_failures_total", "authentication failures by reason", ["reason"]
        )
        self.access = build_access_log(
            settings.access_log_enabled,
            settings.access_log_sample_rate,
            settings.trusted_proxies,
        )
        # This process's event-loop lag: measured by a task the server runs
        # (nurseries/xrpc_server.py), read by admission control to shed on it.
        lag_seconds = self.metrics.histogram(
            "coves_event_loop_lag_seconds",
            "how late the event loop woke a task sleeping 25 ms (sampled every 25 ms)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.loop_lag = LoopLag(observe=lag_seconds.observe)
        self.admission = admission_control(settings, self.loop_lag)
        self._rejected = self.metrics.counter(
            "coves_admission_rejected_total",
            "XRPC requests refused with 503 by admission control, by reason",
            ["reason"],
        )
        for reason in REASONS:  # exported at 0 before the first refusal
            self._rejected.labels(reason)
        self._admission_wait = self.metrics.histogram(
            "coves_admission_wait_seconds",
            "time admitted XRPC requests waited between reaching the server and getting a slot",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self._overloaded = XRPCError(
            503,
            "NotEnoughResources",
            "the server is busy; retry later",
            headers={"Retry-After": str(settings.admission_retry_after_seconds)},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            method: str = scope["method"]
            if path.startswith("/xrpc/") and method in METHODS:
                nsid = path[6:]
                # _health is Quart's (its other methods get Quart's 405), CORS preflight ours.
                if nsid and "/" not in nsid and (nsid != "_health" or method == "OPTIONS"):
                    await self.dispatch(nsid, method, scope, receive, send)
                    return
            elif not path.startswith("/"):
                origin_form = _origin_form(scope)
                if origin_form is None:
                    await self._send(send, _error_reply(_BAD_TARGET, {}))
                    return
                await self(origin_form, receive, send)
                return
            elif "//" in path:
                await self._send(send, _merge_slashes(scope))
                return
        if self.access is not None and scope["type"] == "http":
            await self._logged_fallback(self.access, scope, receive, _shielded(send))
            return
        await self.fallback(scope, receive, _shielded(send))

    async def _logged_fallback(
        self, access: AccessLog, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The Quart routes (_health, /metrics, did.json, 404s) get access-log lines too.

        A request the client gave up on before any answer started (the server
        cancels it) is logged with status 499, as nginx does, not as a 500.
        """
        started = time.perf_counter()
        sent = [500, 0]  # status, body bytes
        answered = False

        async def capture(message: MutableMapping[str, Any]) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                sent[0], answered = message["status"], True
            elif message["type"] == "http.response.body":
                sent[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.fallback(scope, receive, capture)
        except trio.Cancelled:
            if not answered:
                sent[0] = CLIENT_CLOSED
            raise
        finally:
            if access.wanted(sent[0]):
                headers = _header_lookup(scope["headers"])
                incoming = headers("x-request-id")
                peer = scope.get("client")
                access.write(
                    method=scope["method"],
                    status=sent[0],
                    duration_s=time.perf_counter() - started,
                    size=sent[1],
                    peer=peer[0] if peer else None,
                    header=headers,
                    path=scope["path"],
                    request_id=incoming if incoming and REQUEST_ID_RE.match(incoming) else None,
                )

    # -- one request -------------------------------------------------------

    async def dispatch(
        self, nsid: str, method: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            key = name.decode("latin-1").lower()
            if key not in headers:  # the first of repeated headers, as werkzeug's get()
                headers[key] = value.decode("latin-1")
        incoming = headers.get("x-request-id")
        # 32 random hex digits, as uuid4().hex but without building a UUID object.
        rid = incoming if incoming and REQUEST_ID_RE.match(incoming) else os.urandom(16).hex()
        origin = headers.get("origin")
        out: dict[str, str] = {"X-Request-ID": rid}
        cors_headers(self.settings.cors_origins, origin, out)
        endpoint = self.table.get(nsid)
        label = nsid if endpoint is not None else "unknown"
        self.metrics.in_flight.inc()
        bound = structlog.contextvars.bind_contextvars(request_id=rid, nsid=label)
        reply: _Reply | None = None
        try:
            try:
                if method == "OPTIONS" and origin:
                    reply = self._preflight(out, endpoint)
                else:
                    admission = self.admission
                    if admission is not None:
                        await self._admit(admission, scope)
                    try:
                        reply = await self._handle(
                            nsid,
                            endpoint,
                            method=method,
                            scope=scope,
                            headers=headers,
                            raw_headers=raw_headers,
                            out=out,
                            receive=receive,
                        )
                    finally:
                        if admission is not None:
                            admission.release()
            except XRPCError as err:
                reply = _error_reply(err, out)
            except (DatabaseUnavailable, QueryTimeout) as exc:
                log.error("database unavailable during request", error=repr(exc))
                reply = _error_reply(database_unavailable(), out)
            except Exception:
                log.exception("unhandled error in XRPC handler")
                reply = _error_reply(
                    XRPCError(500, "InternalServerError", "Internal Server Error"), out
                )
            await self._send(send, reply)
        finally:
            self.metrics.in_flight.dec()
            status = reply.status if reply is not None else 500
            observers = self._observers.get((label, status))
            if observers is None:
                code = str(status)
                observers = (
                    self.metrics.requests.labels(label, code),
                    self.metrics.latency.labels(label, code),
                )
                self._observers[(label, status)] = observers
            elapsed = time.perf_counter() - started
            observers[0].inc()
            observers[1].observe(elapsed)
            access = self.access
            if access is not None and access.wanted(status):
                peer = scope.get("client")
                access.write(
                    method=method,
                    status=status,
                    duration_s=elapsed,
                    size=len(reply.body) if reply is not None else 0,
                    peer=peer[0] if peer else None,
                    header=headers.get,
                    nsid=nsid,
                    request_id=rid,
                )
            structlog.contextvars.reset_contextvars(**bound)

    async def _admit(self, admission: AdmissionControl, scope: Scope) -> None:
        """Take a slot, or refuse with 503 and Retry-After (raised as an XRPCError).

        The time since the server stamped the request (it waited in the event
        loop before getting here) counts against the queue timeout."""
        extensions = scope.get("extensions")
        arrived = extensions.get(ARRIVED) if extensions else None
        try:
            waited = await admission.acquire(arrived)
        except Overloaded as over:
            self._rejected.labels(over.reason).inc()
            err = self._overloaded
            raise XRPCError(err.status, err.error, err.message, headers=err.headers) from None
        self._admission_wait.observe(waited)

    async def _send(self, send: Send, reply: _Reply) -> None:
        body = reply.body
        out: list[tuple[bytes, bytes]] = []
        if reply.status != 204:
            if reply.content_type is not None:
                out.append((b"content-type", reply.content_type))
            out.append((b"content-length", str(len(body)).encode()))
        for name, value in reply.headers.items():
            out.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": reply.status, "headers": out})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _preflight(self, headers: dict[str, str], endpoint: Endpoint | None) -> _Reply:
        if "Access-Control-Allow-Origin" in headers:
            allow = endpoint.http_method if endpoint else "GET, POST"
            headers["Access-Control-Allow-Methods"] = f"{allow}, OPTIONS"
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Max-Age"] = "600"
        return _Reply(204, b"", headers, content_type=None)

    async def _handle(
        self,
        nsid: str,
        endpoint: Endpoint | None,
        *,
        method: str,
        scope: Scope,
        headers: dict[str, str],
        raw_headers: list[tuple[bytes, bytes]],
        out: dict[str, str],
        receive: Receive,
    ) -> _Reply:
        if endpoint is None:
            if not is_valid_nsid(nsid):  # not a method we lack: not a method name at all
                raise XRPCError(400, "InvalidRequest", "the path does not name an XRPC method")
            raise XRPCError(501, "MethodNotImplemented", f"method not implemented: {nsid}")
        expected = endpoint.http_method
        if method != expected and not (method == "HEAD" and endpoint.kind == "query"):
            raise XRPCError(
                400,
                "InvalidRequest",
                f"Incorrect HTTP method ({method}) expected {expected}",
                headers={"Allow": expected},
            )

        peer = scope.get("client")
        client = client_address(
            peer[0] if peer else None, headers.get, self.settings.trusted_proxies
        )
        decision = self._rate_limit(("general", *endpoint.limits), client, None)

        viewer = None
        if endpoint.auth != AuthPolicy.NONE:
            auth_input = AuthInput(
                http_method=method,
                url=self.url_base + scope["path"],
                nsid=nsid,
                # Every header, lowercased; the last of repeated ones (as before).
                headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers},
            )
            try:
                viewer = await self.ctx.authenticator.authenticate(auth_input)
            except AuthFailure as failure:
                raise self._auth_error(failure) from None
            if viewer is None and endpoint.auth == AuthPolicy.REQUIRED:
                raise self._auth_error(AuthFailure("missing", "authentication required"))
            if viewer is not None:
                self._auth_ok(viewer.method)
                structlog.contextvars.bind_contextvars(viewer=viewer.did)
                if viewer.dpop_nonce is not None:
                    out["DPoP-Nonce"] = viewer.dpop_nonce
                if endpoint.viewer_limits:
                    # Per account, whichever address it comes from.
                    decision = self._rate_limit(endpoint.viewer_limits, viewer.did, decision)
                for class_name, key in viewer.limits:  # per credential (an API key)
                    decision = self._rate_limit((class_name,), key, decision)
        out.update(rate_limit_headers(decision, refused=False))

        raw_params: dict[str, list[str]] = {}
        query: bytes = scope.get("query_string", b"")
        if query:
            for key, value in parse_qsl(
                query.decode("utf-8", "replace"),
                keep_blank_values=True,
                errors="werkzeug.url_quote",
            ):
                raw_params.setdefault(key, []).append(value)
            if b"%00" in query:  # a raw NUL byte cannot reach us: the HTTP parser refuses it
                _refuse_nul(raw_params)

        async def build() -> CachedResponse | _Reply:
            lexicons = (
                self.lexicons if self.lexicons is not None and self.lexicons.has(nsid) else None
            )
            params = (
                lexicons.decode_params(nsid, raw_params)
                if lexicons is not None
                else {k: v[0] if len(v) == 1 else v for k, v in raw_params.items()}
            )
            body = None
            if endpoint.raw_body:
                data = await self._read_body(headers, receive, self._body_limit(endpoint))
                body = RawBody(headers.get("content-type", "").split(";", 1)[0].strip(), data)
            elif endpoint.kind == "procedure":
                body = await self._read_json_body(headers, receive, self._body_limit(endpoint))
                if lexicons is not None:
                    lexicons.validate_input(nsid, body)
            xreq = XRPCRequest(
                nsid=nsid,
                params=params,
                body=body,
                viewer=viewer,
                ctx=self.ctx,
                request_id=out["X-Request-ID"],
                headers=headers,
            )
            result = await endpoint.handler(xreq)
            if isinstance(result, RawResponse):
                merged = {**xreq.response_headers, **result.headers}
                return _Reply(result.status, result.body, merged, result.content_type.encode())
            return CachedResponse(orjson.dumps(result), tuple(xreq.response_headers.items()))

        async def cacheable() -> CachedResponse:
            built = await build()
            if isinstance(built, _Reply):
                raise _Uncacheable(built)
            return built

        result: CachedResponse | _Reply
        if viewer is None:
            ttl = self.cache_ttl.get(nsid)
            tag = None
        else:
            ttl = self.viewer_cache_ttl.get(nsid)
            tag = viewer.did
        if ttl is not None:
            query_key = tuple(sorted((k, tuple(v)) for k, v in raw_params.items()))
            cache_key = (nsid, tag, query_key)
            try:
                result, outcome = await self.cache.get(cache_key, ttl, cacheable, tag=tag)
            except _Uncacheable as raw:
                result, outcome = raw.reply, "uncacheable"
            counter = self._cache_counters.get(outcome)
            if counter is None:
                counter = self._cache_counters[outcome] = self._cache_metric.labels(outcome)
            counter.inc()
        else:
            result = await build()
        if isinstance(result, _Reply):  # a handler's RawResponse: never cached
            for name, value in result.headers.items():
                out[name] = value
            result.headers = out
            return result
        if result.headers:
            out.update(result.headers)
        if method == "HEAD":
            return _Reply(200, b"", out)
        return _Reply(200, result.body, out)

    def _rate_limit(
        self, classes: tuple[str, ...], key: str, decision: Decision | None
    ) -> Decision:
        """Count one hit in each class for ``key``; 429 at the first class that is full.

        Returns the tightest decision so far (the one the headers report).
        """
        for class_name in classes:
            current = self.limiter.check(class_name, key)
            if not current.allowed:
                self.metrics.rate_limited.labels(class_name).inc()
                raise XRPCError(
                    429,
                    "RateLimitExceeded",
                    f"rate limit exceeded ({current.limit_class.limit} per "
                    f"{int(current.limit_class.window)}s); retry later",
                    headers=rate_limit_headers(current, refused=True),
                )
            if decision is None or current.remaining < decision.remaining:
                decision = current
        assert decision is not None
        return decision

    def _body_limit(self, endpoint: Endpoint) -> int:
        # An endpoint carrying images may accept more than MAX_REQUEST_BODY_BYTES;
        # the setting is never lowered by it.
        return max(self.max_body, endpoint.max_body or 0)

    async def _read_body(self, headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
        declared = headers.get("content-length")
        if declared is not None:
            try:
                length: int | None = int(declared)
            except ValueError:
                length = None
            if length is not None and length > limit:
                raise too_large()
        chunks: list[bytes] = []
        total = 0
        with trio.move_on_after(BODY_TIMEOUT_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise XRPCError(400, "InvalidRequest", "the client went away")
                chunk = message.get("body", b"")
                total += len(chunk)
                if total > limit:
                    raise too_large()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        raise too_slow()

    async def _read_json_body(
        self, headers: Mapping[str, str], receive: Receive, limit: int
    ) -> Any:
        data = await self._read_body(headers, receive, limit)
        if not data:
            return None
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type and content_type != JSON:
            raise XRPCError(415, "UnsupportedMediaType", f"expected {JSON}, got {content_type}")
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise XRPCError(400, "InvalidRequest", "request body is not valid JSON") from None
        if b"\\u0000" in data and _has_nul(body):
            raise XRPCError(400, "InvalidRequest", "request body must not contain NUL characters")
        return body

    def _auth_ok(self, method: str) -> None:
        counter = self._auth_counters.get(method)
        if counter is None:
            counter = self._auth_counters[method] = self._auth_successes.labels(method)
        counter.inc()

    def _auth_error(self, failure: AuthFailure) -> XRPCError:
        self.metrics.counter(
            "coves_auth_failures_total", "authentication failures by reason", ["reason"]
        ).labels(failure.reason).inc()
        log.info("authentication failed", auth_reason=failure.reason)
        return XRPCError(
            failure.status,
            failure.error,
            failure.message,
            headers={"WWW-Authenticate": failure.www_authenticate, **failure.headers},
        )


def _header_lookup(raw: list[tuple[bytes, bytes]]) -> Callable[[str], str | None]:
    """A lowercase-name lookup over ASGI headers, built only for requests that are logged."""

    def get(name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in raw:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    return get


def admission_control(
    settings: Settings, loop_lag: LoopLag | None = None
) -> AdmissionControl | None:
    """The per-process admission control the settings ask for (None when turned off)."""
    if settings.admission_max_concurrency <= 0:
        return None
    return AdmissionControl(
        settings.admission_max_concurrency,
        max_queue=settings.admission_max_queue,
        queue_timeout=settings.admission_queue_timeout_ms / 1000.0,
        loop_lag=loop_lag,
        max_loop_lag=settings.admission_max_loop_lag_ms / 1000.0,
    )
