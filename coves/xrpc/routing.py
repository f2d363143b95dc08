"""Declaring XRPC methods.

Each module under ``coves.xrpc.routes`` owns a :class:`Router` and declares
its methods with ``@router.query(...)`` / ``@router.procedure(...)``; the app
collects every router, so adding an endpoint touches one module only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from coves.auth.base import AuthPolicy, Viewer

if TYPE_CHECKING:
    from coves.context import AppContext

MethodKind = Literal["query", "procedure"]


@dataclass
class XRPCRequest:
    """Everything a handler gets: decoded params/body, the viewer, the app context."""

    nsid: str
    params: dict[str, Any]
    body: Any
    viewer: Viewer | None
    ctx: AppContext
    request_id: str
    headers: Mapping[str, str]
    response_headers: dict[str, str] = field(default_factory=dict)

    def require_viewer(self) -> Viewer:
        if self.viewer is None:  # the dispatcher enforces REQUIRED; this narrows the type
            from coves.errors import XRPCError

            raise XRPCError(401, "AuthenticationRequired", "authentication required")
        return self.viewer


@dataclass(frozen=True)
class RawBody:
    """The input of a procedure declared with ``raw_body=True`` (e.g. an image upload):
    its bytes as sent and the media type the client claimed (not to be trusted)."""

    content_type: str
    data: bytes


@dataclass
class RawResponse:
    """A handler result that is not JSON: bytes sent as they are.

    Handlers normally return a JSON-able value; this is for the rare one that
    must choose its own status, content type or body. The dispatcher still adds
    the request id, CORS and rate-limit headers.
    """

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[XRPCRequest], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    nsid: str
    kind: MethodKind
    handler: Handler
    auth: AuthPolicy = AuthPolicy.NONE
    # Limit classes applied on top of "general" (e.g. "comments").
    limits: tuple[str, ...] = ()
    # Longest an anonymous GET response may be shared from the response cache
    # (0: never). Only for responses with no viewer state; the effective TTL
    # is capped by RESPONSE_CACHE_SECONDS (see coves.respcache).
    cache_seconds: float = 0.0
    # The same for requests with a viewer, cached per viewer; only for responses
    # whose viewer state comes from records in the viewer's own repo (votes,
    # subscriptions, blocks): the indexer drops them when it applies one.
    # Capped by VIEWER_CACHE_SECONDS.
    viewer_cache_seconds: float = 0.0
    # Limit classes counted per authenticated account (its DID), not per address.
    viewer_limits: tuple[str, ...] = ()
    # A larger request body than MAX_REQUEST_BODY_BYTES (procedures carrying images).
    max_body: int | None = None
    # Procedures whose input is not JSON (an image upload) get the bytes as a
    # RawBody, up to max_body; larger bodies are 413.
    raw_body: bool = False

    @property
    def http_method(self) -> str:
        return "GET" if self.kind == "query" else "POST"


class Router:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}

    def _add(
        self,
        kind: MethodKind,
        nsid: str,
        auth: AuthPolicy,
        limits: tuple[str, ...],
        *,
        cache_seconds: float = 0.0,
        viewer_cache_seconds: float = 0.0,
        viewer_limits: tuple[str, ...] = (),
        raw_body: bool = False,
        max_body: int | None = None,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            if nsid in self.endpoints:
                raise ValueError(f"{nsid} declared twice")
            self.endpoints[nsid] = Endpoint(
                nsid,
                kind,
                handler,
                auth,
                limits,
                cache_seconds,
                viewer_cache_seconds,
                viewer_limits,
                max_body=max_body,
                raw_body=raw_body,
            )
            return handler

        return decorate

    def query(
        self,
        nsid: str,
        *,
        auth: AuthPolicy = AuthPolicy.NONE,
        limits: tuple[str, ...] = (),
        cache_seconds: float = 0.0,
        viewer_cache_seconds: float = 0.0,
    ) -> Callable[[Handler], Handler]:
        return self._add(
            "query",
            nsid,
            auth,
            limits,
            cache_seconds=cache_seconds,
            viewer_cache_seconds=viewer_cache_seconds,
        )

    def procedure(
        self,
        nsid: str,
        *,
        auth: AuthPolicy = AuthPolicy.REQUIRED,
        limits: tuple[str, ...] = (),
        viewer_limits: tuple[str, ...] = (),
        raw_body: bool = False,
        max_body: int | None = None,
    ) -> Callable[[Handler], Handler]:
        return self._add(
            "procedure",
            nsid,
            auth,
            limits,
            viewer_limits=viewer_limits,
            raw_body=raw_body,
            max_body=max_body,
        )

    def alias(self, nsid: str, target: str) -> None:
        """Serve ``nsid`` with the same handler as ``target`` (kept names for old clients)."""
        self.endpoints[nsid] = dataclasses.replace(self.endpoints[target], nsid=nsid)


def collect_endpoints() -> dict[str, Endpoint]:
    """Import every module in ``coves.xrpc.routes`` and merge their routers."""
    import importlib
    import pkgutil

    import coves.xrpc.routes as routes_pkg

    merged: dict[str, Endpoint] = {}
    for info in sorted(pkgutil.iter_modules(routes_pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{routes_pkg.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if not isinstance(router, Router):
            continue
        for nsid, endpoint in router.endpoints.items():
            if nsid in merged:
                raise ValueError(f"{nsid} declared in two route modules")
            merged[nsid] = endpoint
    return merged
