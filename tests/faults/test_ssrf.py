"""SSRF through a loopback PLC setting: only the configured PLC origin may be private.

Real sockets and the production fetcher: a loopback "internal service" records
every connection; a token naming ``did:web:localhost%3A<its port>`` must not
make Coves connect to it, while did:plc lookups still reach the loopback PLC.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio

from coves.atproto.keys import PrivateKey
from coves.auth.base import AuthFailure, AuthInput
from coves.auth.factory import build_authenticator
from coves.config import test_settings
from coves.identity import IdentityError
from coves.identity.factory import build_fetcher, build_resolver
from tests.support.tokens import compact, service_auth_claims

NSID = "social.coves.actor.getProfile"


async def http_server(nursery: trio.Nursery, body: bytes, seen: list[bytes]) -> int:
    """A one-route HTTP server on loopback that records each request line."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            seen.append(data.split(b"\r\n", 1)[0])
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


async def test_a_did_web_on_a_loopback_port_is_not_fetched() -> None:
    key = PrivateKey.generate("k256")
    internal_seen: list[bytes] = []
    plc_seen: list[bytes] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            internal = await http_server(nursery, b'{"secret": true}', internal_seen)
            plc = await http_server(nursery, b"{}", plc_seen)
            settings = test_settings(
                allow_private_network_fetch=False,
                plc_url=f"http://localhost:{plc}",
                instance_did="did:web:coves.social",
            )
            fetcher = build_fetcher(settings)
            resolver = build_resolver(settings, None, fetcher)
            auth = build_authenticator(settings, resolver, fetcher)
            attacker = f"did:web:localhost%3A{internal}"
            claims = service_auth_claims(attacker, "did:web:coves.social", NSID)
            token = compact({"typ": "JWT", "alg": "ES256K"}, claims, key)
            request = AuthInput(
                "GET",
                "https://coves.social/xrpc/" + NSID,
                NSID,
                {"authorization": f"Bearer {token}"},
            )
            with pytest.raises(AuthFailure) as info:
                await auth.authenticate(request)
            assert info.value.reason == "unknown_issuer"
            # The configured PLC on loopback is still reachable (its own port only).
            with pytest.raises(IdentityError) as refused:  # the empty document does not parse
                await resolver.document("did:plc:" + "a" * 24)
            await fetcher.aclose()
            nursery.cancel_scope.cancel()
    assert refused.value.reason == "bad_document"
    assert internal_seen == []
    assert plc_seen and plc_seen[0].startswith(b"GET /did:plc:")
