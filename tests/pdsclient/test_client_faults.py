"""PdsClient under faults the real PDS cannot be made to produce: 5xx, timeouts, garbage.

Timer behaviour (backoff, the overall deadline) runs under MockClock; no database.
"""

from __future__ import annotations

import random

import httpx
import pytest
import trio

from coves.metrics import Metrics
from coves.pds import (
    BearerAuth,
    PdsAuthError,
    PdsBadResponse,
    PdsConflict,
    PdsConnections,
    PdsError,
    PdsLimits,
    PdsNotFound,
    PdsRejected,
    PdsUnavailable,
)
from coves.secrets import Secret
from tests.support.fake_pds import FakePds, hang, ok, xrpc_error

REF = {"uri": "at://did:plc:abc/x.y.z/3kabc", "cid": "bafyreiabc", "commit": {"rev": "3kabc"}}
RECORD = {"uri": "at://did:plc:abc/x.y.z/self", "cid": "bafyreiabc", "value": {"a": 1}}


def client(fake: FakePds, metrics: Metrics | None = None, **limits: float) -> PdsConnections:
    return PdsConnections(
        metrics=metrics or Metrics(),
        limits=PdsLimits(**limits),  # type: ignore[arg-type]
        transport=fake.transport(),
        rng=random.Random(1),
    )


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def create(conns: PdsConnections) -> object:
    return await conns.client("https://pds.example").create_record(
        BearerAuth("t"), repo="did:plc:abc", collection="x.y.z", record={"a": 1}
    )


async def get(conns: PdsConnections) -> object:
    return await conns.client("https://pds.example").get_record(
        repo="did:plc:abc", collection="x.y.z", rkey="self"
    )


async def test_idempotent_read_retries_5xx_then_succeeds(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on(
        "com.atproto.repo.getRecord",
        xrpc_error(503, "NotEnoughResources"),
        xrpc_error(502, "UpstreamFailure"),
        ok(RECORD),
    )
    metrics = Metrics()
    conns = client(fake, metrics)
    got = await get(conns)
    assert got.value == {"a": 1}  # type: ignore[attr-defined]
    assert len(fake.requests) == 3
    assert sample(metrics, "coves_pds_retries_total", method="com.atproto.repo.getRecord") == 2
    assert (
        sample(
            metrics,
            "coves_pds_requests_total",
            method="com.atproto.repo.getRecord",
            outcome="ok",
        )
        == 1
    )


async def test_retries_are_bounded_and_end_in_503(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on("com.atproto.repo.getRecord", xrpc_error(503, "NotEnoughResources"))
    metrics = Metrics()
    with pytest.raises(PdsUnavailable) as caught:
        await get(client(fake, metrics, attempts=3))
    assert caught.value.status == 503
    assert caught.value.error == "PdsUnavailable"
    assert caught.value.pds_status == 503
    assert len(fake.requests) == 3
    assert (
        sample(
            metrics,
            "coves_pds_requests_total",
            method="com.atproto.repo.getRecord",
            outcome="unavailable",
        )
        == 1
    )


async def test_non_idempotent_write_is_not_retried_after_5xx(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakePds().on("com.atproto.repo.createRecord", xrpc_error(503, "NotEnoughResources"))
    with pytest.raises(PdsUnavailable):
        await create(client(fake))
    assert len(fake.requests) == 1


async def test_write_after_read_timeout_is_not_retried(autojump_clock: trio.abc.Clock) -> None:
    """The record may have been written: a retry could write it twice."""
    fake = FakePds().on("com.atproto.repo.createRecord", httpx.ReadTimeout("slow"))
    with pytest.raises(PdsUnavailable) as caught:
        await create(client(fake))
    assert "no answer" in caught.value.message
    assert len(fake.requests) == 1


async def test_read_after_read_timeout_is_retried(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on("com.atproto.repo.getRecord", httpx.ReadTimeout("slow"), ok(RECORD))
    await get(client(fake))
    assert len(fake.requests) == 2


async def test_write_is_retried_when_the_connection_never_opened(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Nothing reached the PDS, so even createRecord may be sent again."""
    fake = FakePds().on("com.atproto.repo.createRecord", httpx.ConnectError("refused"), ok(REF))
    ref = await create(client(fake))
    assert ref.rev == "3kabc"  # type: ignore[attr-defined]
    assert len(fake.requests) == 2


async def test_connect_errors_end_in_503(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on("com.atproto.repo.createRecord", httpx.ConnectError("refused"))
    with pytest.raises(PdsUnavailable) as caught:
        await create(client(fake, attempts=2))
    assert "cannot connect" in caught.value.message
    assert len(fake.requests) == 2


async def test_overall_deadline_ends_a_hanging_call(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on("com.atproto.repo.getRecord", hang)
    start = trio.current_time()
    with pytest.raises(PdsUnavailable) as caught:
        await get(client(fake, deadline=7.0))
    assert trio.current_time() - start == pytest.approx(7.0)
    assert "within 7 s" in caught.value.message


async def test_rate_limited_is_503_with_retry_after(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on(
        "com.atproto.repo.createRecord",
        xrpc_error(429, "RateLimitExceeded", "slow down", **{"Retry-After": "42"}),
    )
    with pytest.raises(PdsUnavailable) as caught:
        await create(client(fake))
    assert caught.value.headers["Retry-After"] == "42"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("reply", "kind", "status", "name"),
    [
        (xrpc_error(500, "InternalServerError"), PdsError, 502, "UpstreamFailure"),
        (xrpc_error(400, "InvalidSwap", "bad swap"), PdsConflict, 409, "InvalidSwap"),
        (xrpc_error(400, "RecordNotFound"), PdsNotFound, 404, "RecordNotFound"),
        (xrpc_error(400, "ExpiredToken", "expired"), PdsAuthError, 502, "UpstreamFailure"),
        (xrpc_error(401, "AuthenticationRequired"), PdsAuthError, 502, "UpstreamFailure"),
        (xrpc_error(400, "InvalidRequest", "text too long"), PdsRejected, 400, "InvalidRequest"),
        (xrpc_error(413, "PayloadTooLarge"), PdsRejected, 413, "PayloadTooLarge"),
        (xrpc_error(403, "Forbidden"), PdsRejected, 502, "UpstreamFailure"),
        (httpx.Response(200, content=b"<html>"), PdsBadResponse, 502, "UpstreamFailure"),
        (httpx.Response(200, content=b"[1]"), PdsBadResponse, 502, "UpstreamFailure"),
        (httpx.Response(500, content=b"not json"), PdsError, 502, "UpstreamFailure"),
    ],
)
async def test_pds_answers_map_to_clear_errors(
    autojump_clock: trio.abc.Clock,
    reply: httpx.Response,
    kind: type[PdsError],
    status: int,
    name: str,
) -> None:
    fake = FakePds().on("com.atproto.repo.createRecord", reply)
    with pytest.raises(kind) as caught:
        await create(client(fake))
    assert caught.value.status == status
    assert caught.value.error == name
    assert caught.value.status != 500


async def test_pds_message_reaches_the_client_on_400(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on(
        "com.atproto.repo.createRecord", xrpc_error(400, "InvalidRequest", "text too long")
    )
    with pytest.raises(PdsRejected) as caught:
        await create(client(fake))
    assert "text too long" in caught.value.message


async def test_oversized_answer_is_refused(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on(
        "com.atproto.repo.getRecord", httpx.Response(200, content=b"[" + b"1," * 5000 + b"1]")
    )
    with pytest.raises(PdsBadResponse) as caught:
        await get(client(fake, max_response_bytes=1000))
    assert "larger than 1000 bytes" in caught.value.message


class NonceAuth:
    """A DPoP-like strategy: learns a nonce from the PDS and retries with it."""

    def __init__(self, always_retry: bool = False) -> None:
        self.nonce: str | None = None
        self.always_retry = always_retry
        self.seen: list[int] = []

    async def authorize(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = "DPoP token"
        request.headers["DPoP"] = f"proof;nonce={self.nonce}"

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        self.seen.append(response.status_code)
        if "DPoP-Nonce" in response.headers:
            self.nonce = response.headers["DPoP-Nonce"]
        return self.always_retry or error == "use_dpop_nonce"


async def test_auth_strategy_retries_after_a_nonce_challenge(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakePds().on(
        "com.atproto.repo.createRecord",
        xrpc_error(
            401,
            "use_dpop_nonce",
            **{"DPoP-Nonce": "n1", "WWW-Authenticate": 'DPoP error="use_dpop_nonce"'},
        ),
        ok(REF),
    )
    auth = NonceAuth()
    conns = client(fake)
    ref = await conns.client("https://pds.example").create_record(
        auth, repo="did:plc:abc", collection="x.y.z", record={"a": 1}
    )
    assert ref.uri == REF["uri"]
    assert [r.headers["DPoP"] for r in fake.requests] == ["proof;nonce=None", "proof;nonce=n1"]
    assert auth.seen == [401, 200]


async def test_auth_retries_are_bounded(autojump_clock: trio.abc.Clock) -> None:
    fake = FakePds().on("com.atproto.repo.createRecord", xrpc_error(401, "use_dpop_nonce"))
    with pytest.raises(PdsAuthError):
        await (
            client(fake)
            .client("https://pds.example")
            .create_record(
                NonceAuth(always_retry=True), repo="did:plc:abc", collection="x.y.z", record={}
            )
        )
    assert len(fake.requests) == 3  # the first send and two re-sends


async def test_tokens_and_passwords_are_not_in_errors_or_reprs(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakePds().on("com.atproto.server.createSession", xrpc_error(401, "AuthRequired"))
    conns = client(fake)
    with pytest.raises(PdsAuthError) as caught:
        await conns.client("https://pds.example").create_session(
            identifier="c-x.coves.test", password=Secret("hunter2-very-secret")
        )
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(BearerAuth("hunter2"))


async def test_a_real_socket_that_never_answers_times_out() -> None:
    """Real timeouts on a real socket (not the mock transport): accepted, never answered."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    held: list[trio.SocketStream] = []

    async def accept_and_hold() -> None:
        stream = await listeners[0].accept()
        held.append(stream)
        await trio.sleep_forever()

    conns = PdsConnections(
        metrics=Metrics(), limits=PdsLimits(read_timeout=0.3, deadline=5.0, attempts=1)
    )
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept_and_hold)
                with pytest.raises(PdsUnavailable) as caught:
                    await conns.client(f"http://127.0.0.1:{port}").describe_server()
                nursery.cancel_scope.cancel()
        assert "no answer (ReadTimeout)" in caught.value.message
    finally:
        await conns.aclose()
        for stream in held:
            await stream.aclose()
        await listeners[0].aclose()
