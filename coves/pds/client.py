"""The one client every PDS call goes through.

Why it is shaped like this:

- **Bounded**: a connect timeout, a read timeout, an overall deadline per call
  (retries included) and a cap on the response size, so a slow or hostile PDS
  costs a bounded amount of time and memory; all on Trio's clock.
- **Retries only what is safe**: a connection that never opened is retried
  for any call (nothing reached the PDS); a timeout, a dropped connection or a
  502/503/504 is retried only for idempotent calls (reads, ``putRecord`` and
  ``deleteRecord`` without a swap, ``uploadBlob``, ``createSession``), because
  a ``createRecord`` whose answer was lost may have been applied.
- **Errors are ours**: every failure is a :class:`~coves.pds.errors.PdsError`
  (an XRPCError): a PDS that is down or times out is 503 ``PdsUnavailable``,
  never a 500 (:func:`~coves.pds.errors.error_for_status`).
- **Authentication is pluggable** (:mod:`coves.pds.auth`): bearer sessions for
  communities, DPoP-bound tokens for users' OAuth sessions.
- **Observable**: ``coves_pds_requests_total{method,outcome}``,
  ``coves_pds_request_duration_seconds{method}``, ``coves_pds_retries_total{method}``.

``PdsClient`` is cheap: one per PDS URL, all sharing one ``httpx.AsyncClient``
pool through :class:`PdsConnections`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson
import trio

from coves import clock
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.pds.auth import MAX_AUTH_RETRIES, NoAuth, PdsAuth
from coves.pds.errors import PdsBadResponse, PdsError, PdsUnavailable, error_for_status
from coves.secrets import Secret

log = get_logger(__name__)

USER_AGENT = "coves-appview"
RETRYABLE_STATUSES = frozenset({502, 503, 504})
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class PdsLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 30.0  # one call, retries and backoff included
    attempts: int = 3  # tries of a retryable failure (>= 1)
    backoff: float = 0.25  # first retry delay; doubles, with jitter
    max_response_bytes: int = 2 * 1024 * 1024


class PdsConnections:
    """One connection pool (and its limits and metrics) shared by every PdsClient.

    ``transport``: injected by tests (``httpx.MockTransport``, a fault proxy).
    """

    def __init__(
        self,
        *,
        metrics: Metrics,
        limits: PdsLimits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits or PdsLimits()
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self.rng = rng or random.Random()
        self.requests = metrics.counter(
            "coves_pds_requests_total", "PDS calls by method and outcome", ["method", "outcome"]
        )
        self.duration = metrics.histogram(
            "coves_pds_request_duration_seconds", "PDS call time by method", ["method"]
        )
        self.retries = metrics.counter(
            "coves_pds_retries_total", "PDS call attempts retried, by method", ["method"]
        )

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            lim = self.limits
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(lim.read_timeout, connect=lim.connect_timeout),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                trust_env=False,
            )
        return self._http

    def client(self, base_url: str) -> PdsClient:
        return PdsClient(base_url, self)

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()


@dataclass(frozen=True)
class _Call:
    nsid: str
    auth: PdsAuth
    http_method: str
    url: str
    params: Mapping[str, str] | None
    body: bytes | None
    headers: dict[str, str]
    idempotent: bool


@dataclass(frozen=True)
class PdsSession:
    """What createAccount / createSession / refreshSession answer."""

    did: str
    handle: str
    access_jwt: Secret
    refresh_jwt: Secret
    active: bool = True
    status: str | None = None


@dataclass(frozen=True)
class RecordRef:
    """A written record: its URI and CID, and the rev of the commit that wrote it."""

    uri: str
    cid: str
    rev: str | None


@dataclass(frozen=True)
class RecordValue:
    uri: str
    cid: str | None
    value: dict[str, Any]


class PdsClient:
    """XRPC calls to one PDS (see the module docstring)."""

    def __init__(self, base_url: str, connections: PdsConnections) -> None:
        self.base_url = base_url.rstrip("/")
        self._conn = connections

    def __repr__(self) -> str:
        return f"PdsClient({self.base_url!r})"

    # ---- server -----------------------------------------------------------------

    async def describe_server(self) -> dict[str, Any]:
        return _object(await self.call("com.atproto.server.describeServer", http_method="GET"))

    async def create_invite_code(self, auth: PdsAuth, *, use_count: int = 1) -> str:
        body = await self.call(
            "com.atproto.server.createInviteCode", auth=auth, json={"useCount": use_count}
        )
        return _str(_object(body), "code")

    async def create_account(
        self,
        *,
        handle: str,
        email: str,
        password: Secret,
        invite_code: str | None = None,
    ) -> PdsSession:
        payload: dict[str, Any] = {
            "handle": handle,
            "email": email,
            "password": password.reveal(),
        }
        if invite_code is not None:
            payload["inviteCode"] = invite_code
        return _session(await self.call("com.atproto.server.createAccount", json=payload))

    async def create_session(self, *, identifier: str, password: Secret) -> PdsSession:
        body = await self.call(
            "com.atproto.server.createSession",
            json={"identifier": identifier, "password": password.reveal()},
            idempotent=True,  # an extra session is harmless; a lost answer is not
        )
        return _session(body)

    async def refresh_session(self, auth: PdsAuth) -> PdsSession:
        """``auth``: ``BearerAuth(refresh_jwt)``. Rotates the refresh token: never retried."""
        return _session(await self.call("com.atproto.server.refreshSession", auth=auth))

    async def get_session(self, auth: PdsAuth) -> dict[str, Any]:
        return _object(
            await self.call("com.atproto.server.getSession", auth=auth, http_method="GET")
        )

    async def health(self) -> dict[str, Any]:
        """The PDS's ``/xrpc/_health`` answer (``{"version": ...}`` from the reference PDS)."""
        return _object(await self.call("_health", http_method="GET"))

    async def delete_session(self, auth: PdsAuth) -> None:
        """``auth``: ``BearerAuth(refresh_jwt)``."""
        await self.call("com.atproto.server.deleteSession", auth=auth)

    # ---- repo -------------------------------------------------------------------

    async def create_record(
        self,
        auth: PdsAuth,
        *,
        repo: str,
        collection: str,
        record: Mapping[str, Any],
        rkey: str | None = None,
        validate: bool | None = None,
        swap_commit: str | None = None,
    ) -> RecordRef:
        payload: dict[str, Any] = {"repo": repo, "collection": collection, "record": record}
        _put_optional(payload, rkey=rkey, validate=validate, swapCommit=swap_commit)
        body = await self.call("com.atproto.repo.createRecord", auth=auth, json=payload)
        return _record_ref(body)

    async def put_record(
        self,
        auth: PdsAuth,
        *,
        repo: str,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        swap_record: str | None = None,
        validate: bool | None = None,
    ) -> RecordRef:
        """``swap_record``: the CID the record must have now (a compare-and-swap)."""
        payload: dict[str, Any] = {
            "repo": repo,
            "collection": collection,
            "rkey": rkey,
            "record": record,
        }
        _put_optional(payload, swapRecord=swap_record, validate=validate)
        body = await self.call(
            "com.atproto.repo.putRecord", auth=auth, json=payload, idempotent=swap_record is None
        )
        return _record_ref(body)

    async def delete_record(
        self,
        auth: PdsAuth,
        *,
        repo: str,
        collection: str,
        rkey: str,
        swap_record: str | None = None,
    ) -> str | None:
        """Returns the rev of the commit (None when there was nothing to delete)."""
        payload: dict[str, Any] = {"repo": repo, "collection": collection, "rkey": rkey}
        _put_optional(payload, swapRecord=swap_record)
        body = await self.call(
            "com.atproto.repo.deleteRecord",
            auth=auth,
            json=payload,
            idempotent=swap_record is None,
        )
        return _commit_rev(_object(body)) if body is not None else None

    async def get_record(
        self, *, repo: str, collection: str, rkey: str, auth: PdsAuth | None = None
    ) -> RecordValue:
        body = _object(
            await self.call(
                "com.atproto.repo.getRecord",
                auth=auth or NoAuth(),
                http_method="GET",
                params={"repo": repo, "collection": collection, "rkey": rkey},
            )
        )
        value = body.get("value")
        if not isinstance(value, dict):
            raise PdsBadResponse("PDS com.atproto.repo.getRecord: no record value")
        cid = body.get("cid")
        return RecordValue(_str(body, "uri"), cid if isinstance(cid, str) else None, value)

    async def upload_blob(self, auth: PdsAuth, data: bytes, mime_type: str) -> dict[str, Any]:
        """Returns the blob ref (``{"$type": "blob", "ref": {"$link": cid}, ...}``)."""
        body = _object(
            await self.call(
                "com.atproto.repo.uploadBlob",
                auth=auth,
                content=data,
                content_type=mime_type,
                idempotent=True,  # content-addressed: the same bytes are the same blob
            )
        )
        blob = body.get("blob")
        if not isinstance(blob, dict) or not isinstance(blob.get("ref"), dict):
            raise PdsBadResponse("PDS com.atproto.repo.uploadBlob: no blob ref")
        return blob

    async def apply_writes(
        self,
        auth: PdsAuth,
        *,
        repo: str,
        writes: list[dict[str, Any]],
        validate: bool | None = None,
        swap_commit: str | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"repo": repo, "writes": writes}
        _put_optional(payload, validate=validate, swapCommit=swap_commit)
        return _object(await self.call("com.atproto.repo.applyWrites", auth=auth, json=payload))

    # ---- the call -----------------------------------------------------------------

    async def call(
        self,
        nsid: str,
        *,
        auth: PdsAuth | None = None,
        http_method: str = "POST",
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One XRPC call: the decoded JSON answer (None for an empty body), or a PdsError.

        ``idempotent`` defaults to True for GET and False otherwise.
        """
        conn = self._conn
        headers = {"Accept": "application/json"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        elif content is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        call = _Call(
            nsid=nsid,
            auth=auth or NoAuth(),
            http_method=http_method,
            url=f"{self.base_url}/xrpc/{nsid}",
            params=params,
            body=orjson.dumps(json) if json is not None else content,
            headers=headers,
            idempotent=http_method == "GET" if idempotent is None else idempotent,
        )
        started = clock.monotonic()
        outcome = "ok"
        try:
            with trio.fail_after(conn.limits.deadline):
                return await self._attempts(call)
        except trio.TooSlowError:
            outcome = PdsUnavailable.outcome
            raise PdsUnavailable(
                f"PDS {nsid} did not answer within {conn.limits.deadline:g} s"
            ) from None
        except PdsError as exc:
            outcome = exc.outcome
            raise
        finally:
            conn.requests.labels(nsid, outcome).inc()
            conn.duration.labels(nsid).observe(clock.monotonic() - started)

    async def _attempts(self, call: _Call) -> Any:
        conn = self._conn
        nsid = call.nsid
        attempt = 0
        auth_retries = 0
        while True:
            attempt += 1
            request = conn.http.build_request(
                call.http_method,
                call.url,
                params=call.params,
                content=call.body,
                headers=call.headers,
            )
            await call.auth.authorize(request)
            try:
                status, resp_headers, data = await self._send(request)
            except _NOTHING_SENT as exc:
                if attempt < conn.limits.attempts:
                    await self._backoff(nsid, attempt)
                    continue
                raise PdsUnavailable(f"PDS {nsid}: cannot connect ({_kind(exc)})") from None
            except _MAYBE_SENT as exc:
                if call.idempotent and attempt < conn.limits.attempts:
                    await self._backoff(nsid, attempt)
                    continue
                raise PdsUnavailable(f"PDS {nsid}: no answer ({_kind(exc)})") from None
            error, message = _error_body(data) if status >= 400 else (None, None)
            response = httpx.Response(status, headers=resp_headers, request=request)
            if await call.auth.on_response(request, response, error):
                auth_retries += 1
                if auth_retries <= MAX_AUTH_RETRIES:
                    attempt -= 1  # a credential round-trip is not a failed attempt
                    continue
            if status < 400:
                return _decode(nsid, data)
            if status in RETRYABLE_STATUSES and call.idempotent and attempt < conn.limits.attempts:
                await self._backoff(nsid, attempt)
                continue
            log.info("pds call failed", method=nsid, status=status, error=error)
            raise error_for_status(
                nsid, status, error, message, retry_after=_retry_after(resp_headers)
            )

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        cap = self._conn.limits.max_response_bytes
        response = await self._conn.http.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async with aclosing(cast(AsyncGenerator[bytes], response.aiter_bytes())) as body:
                async for chunk in body:
                    size += len(chunk)
                    if size > cap:
                        raise PdsBadResponse(
                            f"PDS {request.url.path}: answer larger than {cap} bytes",
                            pds_status=response.status_code,
                        )
                    chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            await response.aclose()

    async def _backoff(self, nsid: str, attempt: int) -> None:
        self._conn.retries.labels(nsid).inc()
        delay = self._conn.limits.backoff * 2 ** (attempt - 1)
        await trio.sleep(self._conn.rng.uniform(delay / 2, delay))


# ---- decoding -------------------------------------------------------------------------


def _kind(exc: BaseException) -> str:
    return type(exc).__name__


def _decode(nsid: str, data: bytes) -> Any:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise PdsBadResponse(f"PDS {nsid}: answer is not JSON") from None


def _error_body(data: bytes) -> tuple[str | None, str | None]:
    try:
        body = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, message = body.get("error"), body.get("message")
    return (
        error[:100] if isinstance(error, str) else None,
        message[:500] if isinstance(message, str) else None,
    )


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), 3600.0)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PdsBadResponse("PDS answer is not a JSON object")
    return body


def _str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise PdsBadResponse(f"PDS answer lacks {name}")
    return value


def _put_optional(payload: dict[str, Any], **values: Any) -> None:
    for name, value in values.items():
        if value is not None:
            payload[name] = value


def _session(body: Any) -> PdsSession:
    obj = _object(body)
    active = obj.get("active")
    status = obj.get("status")
    return PdsSession(
        did=_str(obj, "did"),
        handle=_str(obj, "handle"),
        access_jwt=Secret(_str(obj, "accessJwt")),
        refresh_jwt=Secret(_str(obj, "refreshJwt")),
        active=active if isinstance(active, bool) else True,
        status=status if isinstance(status, str) else None,
    )


def _commit_rev(body: Mapping[str, Any]) -> str | None:
    commit = body.get("commit")
    if isinstance(commit, dict) and isinstance(commit.get("rev"), str):
        return str(commit["rev"])
    return None


def _record_ref(body: Any) -> RecordRef:
    obj = _object(body)
    return RecordRef(uri=_str(obj, "uri"), cid=_str(obj, "cid"), rev=_commit_rev(obj))
