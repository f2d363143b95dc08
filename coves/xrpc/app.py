"""The Quart-Trio application: the XRPC dispatcher in front of a few Quart routes.

Every ``/xrpc/<NSID>`` call is handled by the raw ASGI dispatcher
(``coves.xrpc.dispatch.XrpcASGI``) wrapped around Quart's ``asgi_app``: it
assigns the request id, applies CORS and rate limits, authenticates, decodes
and validates parameters, calls the handler and maps every failure to the
XRPC error body. Quart keeps the operational routes (``/xrpc/_health``,
``/metrics``, ``/.well-known/did.json``) and the 404/405 fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from coves import __version__
from coves.context import AppContext
from coves.db import DatabaseUnavailable, QueryTimeout, Row
from coves.db.queries import processes
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from coves.xrpc.dispatch import JSON, XrpcASGI, cors_headers, database_unavailable
from coves.xrpc.dispatch import METHODS as XRPC_METHODS
from coves.xrpc.dispatch import too_large as payload_too_large
from coves.xrpc.ratelimit import RateLimiter, default_limit_classes
from coves.xrpc.routing import Endpoint, collect_endpoints

log = get_logger("coves.xrpc")


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


def create_app(
    ctx: AppContext,
    endpoints: dict[str, Endpoint] | None = None,
    *,
    limiter: RateLimiter | None = None,
) -> QuartTrio:
    """The app serving ``ctx``; rate limits follow ``ctx.settings`` unless ``limiter`` is given."""
    app = QuartTrio("coves")
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_request_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.url_map.merge_slashes = False  # the dispatcher answers "//" paths (XRPC-shaped 308)
    app.extensions["coves"] = ctx
    table = collect_endpoints() if endpoints is None else endpoints
    settings = ctx.settings
    metrics = ctx.metrics
    limiter = limiter or RateLimiter(default_limit_classes(settings))
    app.asgi_app = XrpcASGI(ctx, table, app.asgi_app, limiter)  # type: ignore[assignment,method-assign]

    @app.route("/xrpc/<nsid>", methods=sorted(XRPC_METHODS))
    async def xrpc_placeholder(nsid: str) -> Response:
        # XrpcASGI answers these methods on /xrpc/<nsid> before Quart sees them,
        # except on _health (GET/HEAD only). The rule is here so that other
        # methods get Quart's 405 (the path exists), not 404.
        return error_response(XRPCError(405, "InvalidRequest", "method not allowed"))

    @app.route("/xrpc/_health", methods=["GET", "HEAD"])
    async def health() -> Response:
        # The watcher's verdict first: an outage must not make the health check wait.
        # Then one read on the database's side connection (never behind the pool):
        # the deployment's other processes and their heartbeats.
        db_ok = await ctx.db.is_reachable()
        others = await processes.deployment(ctx.db) if db_ok else None
        db_ok = others is not None
        children = ctx.health.health_report() if ctx.health is not None else {}
        healthy = db_ok and (ctx.health is None or ctx.health.healthy)
        body = {
            "version": __version__,
            "status": "ok" if healthy else "unhealthy",
            "database": {"reachable": db_ok},
            "children": children,
            "processes": [_process_view(row) for row in others or ()],
        }
        headers: dict[str, str] = {}
        cors_headers(settings.cors_origins, request.headers.get("origin"), headers)
        return json_response(body, 200 if healthy else 503, headers)

    @app.route("/metrics", methods=["GET"])
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), status=200, content_type=METRICS_CONTENT_TYPE)

    @app.route("/.well-known/did.json", methods=["GET"])
    async def did_document() -> Response:
        from coves.instance import instance_did_document

        document = await instance_did_document(settings, ctx.instance_key)
        if document is None:
            raise_404 = XRPCError(404, "NotFound", "this instance has no did:web document")
            return error_response(raise_404)
        headers: dict[str, str] = {}
        cors_headers(settings.cors_origins, request.headers.get("origin"), headers)
        return json_response(document, 200, headers)

    from coves.oauth.routes import register_oauth_routes

    register_oauth_routes(app, ctx, limiter)

    @app.errorhandler(404)
    async def not_found(_exc: Exception) -> Response:
        return error_response(XRPCError(404, "NotFound", "no such route"))

    @app.errorhandler(405)
    async def bad_method(_exc: Exception) -> Response:
        return error_response(XRPCError(405, "InvalidRequest", "method not allowed"))

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(_exc: Exception) -> Response:
        return error_response(payload_too_large())

    @app.errorhandler(DatabaseUnavailable)
    @app.errorhandler(QueryTimeout)
    async def database_down(_exc: Exception) -> Response:
        return error_response(database_unavailable())

    @app.errorhandler(Exception)
    async def unhandled(exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
            return error_response(XRPCError(exc.code, None, exc.description or None))
        log.exception("unhandled error outside XRPC dispatch")
        return error_response(XRPCError(500, "InternalServerError", "Internal Server Error"))

    return app


def _process_view(row: Row) -> dict[str, Any]:
    """One process of the deployment as _health shows it (from its last heartbeat)."""
    age = float(row["age_seconds"])
    details = row["details"] or {}
    return {
        "name": row["name"],
        "role": row["role"],
        "host": row["host"],
        "pid": row["pid"],
        "healthy": bool(row["healthy"]) and age <= processes.STALE_AFTER_SECONDS,
        "lastSeenSecondsAgo": round(age, 1),
        "uptimeSeconds": round(float(row["uptime_seconds"]), 1),
        "children": details.get("children", {}),
        **{key: value for key, value in details.items() if key != "children"},
    }
