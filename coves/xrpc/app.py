"""The Quart-Trio application: one dispatcher for every ``/xrpc/<NSID>``.

The dispatcher is the only place that turns HTTP into an XRPC call: it
assigns the request id, applies rate limits, authenticates, decodes and
validates parameters, calls the handler and maps every failure to the XRPC
error body. Unknown NSIDs get 501, the wrong HTTP method 400 with ``Allow``,
and unexpected exceptions a 500 whose body says nothing about the cause.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import structlog
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from coves import __version__
from coves.auth.base import AuthFailure, AuthInput, AuthPolicy
from coves.db import DatabaseUnavailable, QueryTimeout
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from coves.xrpc.context import AppContext
from coves.xrpc.ratelimit import Decision, client_address, rate_limit_headers
from coves.xrpc.routing import Endpoint, XRPCRequest, collect_endpoints

log = get_logger("coves.xrpc")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
EXPOSED_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After, "
    "DPoP-Nonce, WWW-Authenticate, X-Request-ID, Atproto-Repo-Rev"
)
ALLOWED_HEADERS = (
    "Authorization, Content-Type, DPoP, atproto-proxy, atproto-accept-labelers, X-Request-ID"
)
JSON = "application/json"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status=status, headers=dict(headers or {}), content_type=JSON
    )


def error_response(err: XRPCError, headers: Mapping[str, str] | None = None) -> Response:
    merged = dict(headers or {})
    merged.update(err.headers)
    return json_response(err.body(), err.status, merged)


def _too_large() -> XRPCError:
    # The rest of the body is still on the wire: close the connection rather
    # than parse it as the next request on a keep-alive connection.
    return XRPCError(
        413, "PayloadTooLarge", "request body is too large", headers={"Connection": "close"}
    )


def create_app(ctx: AppContext, endpoints: dict[str, Endpoint] | None = None) -> QuartTrio:
    app = QuartTrio("coves")
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_request_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["coves"] = ctx
    table = collect_endpoints() if endpoints is None else endpoints
    settings = ctx.settings
    metrics = ctx.metrics
    limiter = ctx.limiter
    assert limiter is not None
    lexicons = ctx.lexicons

    def cors_headers(origin: str | None, headers: dict[str, str]) -> None:
        if not origin:
            return
        allowed = settings.cors_origins
        if "*" in allowed:
            headers["Access-Control-Allow-Origin"] = "*"
        elif origin in allowed:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        else:
            return
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS

    def request_id() -> str:
        incoming = request.headers.get("x-request-id")
        if incoming and REQUEST_ID_RE.match(incoming):
            return incoming
        return uuid.uuid4().hex

    def client_key() -> str:
        peer = request.scope.get("client")
        peer_host = peer[0] if peer else None
        return client_address(peer_host, request.headers.get, settings.trusted_proxies)

    def external_url() -> str:
        """The URL the client used (for DPoP ``htu``), without query or fragment."""
        base = urlsplit(settings.appview_public_url)
        return f"{base.scheme}://{base.netloc}{request.path}"

    @app.route(
        "/xrpc/<nsid>",
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    )
    async def dispatch(nsid: str) -> Response:
        rid = request_id()
        started = time.perf_counter()
        origin = request.headers.get("origin")
        headers: dict[str, str] = {"X-Request-ID": rid}
        cors_headers(origin, headers)
        endpoint = table.get(nsid)
        label = nsid if endpoint is not None else "unknown"
        status = 500
        metrics.in_flight.inc()
        with structlog.contextvars.bound_contextvars(request_id=rid, nsid=label):
            try:
                if request.method == "OPTIONS" and origin:
                    status = 204
                    return _preflight(headers, endpoint)
                response = await _handle(nsid, endpoint, headers, rid)
                status = response.status_code
                return response
            except XRPCError as err:
                status = err.status
                return error_response(err, headers)
            except RequestEntityTooLarge:
                status = 413
                return error_response(_too_large(), headers)
            except (DatabaseUnavailable, QueryTimeout) as exc:
                status = 503
                log.error("database unavailable during request", error=repr(exc))
                return error_response(
                    XRPCError(503, "NotEnoughResources", "the service is temporarily unavailable"),
                    headers,
                )
            except HTTPException as exc:
                status = exc.code or 500
                return error_response(XRPCError(status, None, exc.description or None), headers)
            except Exception:
                status = 500
                log.exception("unhandled error in XRPC handler")
                return error_response(
                    XRPCError(500, "InternalServerError", "Internal Server Error"), headers
                )
            finally:
                metrics.in_flight.dec()
                elapsed = time.perf_counter() - started
                metrics.requests.labels(label, str(status)).inc()
                metrics.latency.labels(label, str(status)).observe(elapsed)

    def _preflight(headers: dict[str, str], endpoint: Endpoint | None) -> Response:
        if "Access-Control-Allow-Origin" in headers:
            allow = endpoint.http_method if endpoint else "GET, POST"
            headers["Access-Control-Allow-Methods"] = f"{allow}, OPTIONS"
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Max-Age"] = "600"
        return Response(b"", status=204, headers=headers)

    async def _handle(
        nsid: str, endpoint: Endpoint | None, headers: dict[str, str], rid: str
    ) -> Response:
        if endpoint is None:
            raise XRPCError(501, "MethodNotImplemented", f"method not implemented: {nsid}")
        method = request.method
        if method == "HEAD" and endpoint.kind == "query":
            method = "GET"
        if method != endpoint.http_method:
            raise XRPCError(
                400,
                "InvalidRequest",
                f"Incorrect HTTP method ({request.method}) expected {endpoint.http_method}",
                headers={"Allow": endpoint.http_method},
            )

        client = client_key()
        decision: Decision | None = None
        for class_name in ("general", *endpoint.limits):
            current = limiter.check(class_name, client)
            if not current.allowed:
                metrics.rate_limited.labels(class_name).inc()
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
        headers.update(rate_limit_headers(decision, refused=False))

        viewer = None
        if endpoint.auth != AuthPolicy.NONE:
            auth_input = AuthInput(
                http_method=request.method,
                url=external_url(),
                nsid=nsid,
                headers={k.lower(): v for k, v in request.headers.items()},
            )
            try:
                viewer = await ctx.authenticator.authenticate(auth_input)
            except AuthFailure as failure:
                raise _auth_error(failure) from None
            if viewer is None and endpoint.auth == AuthPolicy.REQUIRED:
                raise _auth_error(AuthFailure("missing", "authentication required"))
            if viewer is not None:
                structlog.contextvars.bind_contextvars(viewer=viewer.did)

        raw_params = {key: request.args.getlist(key) for key in request.args}
        params = (
            lexicons.decode_params(nsid, raw_params)
            if lexicons is not None and lexicons.has(nsid)
            else {k: v[0] if len(v) == 1 else v for k, v in raw_params.items()}
        )
        body = None
        if endpoint.kind == "procedure":
            body = await _read_json_body()
            if lexicons is not None and lexicons.has(nsid):
                lexicons.validate_input(nsid, body)

        xreq = XRPCRequest(
            nsid=nsid,
            params=params,
            body=body,
            viewer=viewer,
            ctx=ctx,
            request_id=rid,
            headers=cast(Mapping[str, str], request.headers),
        )
        result = await endpoint.handler(xreq)
        headers.update(xreq.response_headers)
        if isinstance(result, Response):
            result.headers.update(headers)
            return result
        if request.method == "HEAD":
            return Response(b"", status=200, headers=headers, content_type=JSON)
        return json_response(result, 200, headers)

    async def _read_json_body() -> Any:
        length = request.content_length
        if length is not None and length > settings.max_request_body_bytes:
            raise _too_large()
        data = await request.get_data(cache=False, as_text=False)
        if not data:
            return None
        content_type = (request.mimetype or "").lower()
        if content_type and content_type != JSON:
            raise XRPCError(415, "UnsupportedMediaType", f"expected {JSON}, got {content_type}")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise XRPCError(400, "InvalidRequest", "request body is not valid JSON") from None

    def _auth_error(failure: AuthFailure) -> XRPCError:
        metrics.counter(
            "coves_auth_failures_total", "authentication failures by reason", ["reason"]
        ).labels(failure.reason).inc()
        log.info("authentication failed", auth_reason=failure.reason)
        return XRPCError(
            401,
            "AuthenticationRequired",
            failure.message,
            headers={"WWW-Authenticate": failure.www_authenticate, **failure.headers},
        )

    @app.route("/xrpc/_health", methods=["GET", "HEAD"])
    async def health() -> Response:
        db_ok = await ctx.db.ping()
        children = ctx.health.health_report() if ctx.health is not None else {}
        healthy = db_ok and (ctx.health is None or ctx.health.healthy)
        body = {
            "version": __version__,
            "status": "ok" if healthy else "unhealthy",
            "database": {"reachable": db_ok},
            "children": children,
        }
        headers: dict[str, str] = {}
        cors_headers(request.headers.get("origin"), headers)
        return json_response(body, 200 if healthy else 503, headers)

    @app.route("/metrics", methods=["GET"])
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), status=200, content_type=METRICS_CONTENT_TYPE)

    @app.route("/.well-known/did.json", methods=["GET"])
    async def did_document() -> Response:
        from coves.instance import instance_did_document

        document = await instance_did_document(ctx)
        if document is None:
            raise_404 = XRPCError(404, "NotFound", "this instance has no did:web document")
            return error_response(raise_404)
        headers: dict[str, str] = {}
        cors_headers(request.headers.get("origin"), headers)
        return json_response(document, 200, headers)

    @app.errorhandler(404)
    async def not_found(_exc: Exception) -> Response:
        return error_response(XRPCError(404, "NotFound", "no such route"))

    @app.errorhandler(405)
    async def bad_method(_exc: Exception) -> Response:
        return error_response(XRPCError(405, "InvalidRequest", "method not allowed"))

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(_exc: Exception) -> Response:
        return error_response(_too_large())

    @app.errorhandler(Exception)
    async def unhandled(exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
            return error_response(XRPCError(exc.code, None, exc.description or None))
        log.exception("unhandled error outside XRPC dispatch")
        return error_response(XRPCError(500, "InternalServerError", "Internal Server Error"))

    return app
