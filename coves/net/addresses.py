"""Which IP addresses an outbound fetch of a user-supplied URL may reach.

A DID document or handle host is chosen by whoever publishes the identity,
so without this check a crafted did:web could make the server probe its own
network (SSRF). Only globally routable unicast addresses are allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

import trio

from coves.net.errors import BlockedAddress, Unreachable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HostResolver = Callable[[str, int], Awaitable[Sequence[str]]]


def is_public_address(addr: IPAddress) -> bool:
    """True only for addresses that are safe to contact on the public internet."""
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped or addr.sixtofour
        if mapped is not None:
            return is_public_address(mapped)
        if addr.teredo is not None:
            return False
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver returns for ``host``."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    except OSError as exc:
        raise Unreachable(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in infos]


async def checked_addresses(
    host: str, port: int, resolve: HostResolver, *, allow_private: bool
) -> list[str]:
    """Resolve ``host`` and refuse it if *any* address is not public.

    Checking every address (not just the first) stops a name that mixes a
    public and a private record from being used to reach the private one.
    """
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else list(await resolve(host, port))
    if not addresses:
        raise Unreachable(f"{host} has no addresses")
    if allow_private:
        return addresses
    for text in addresses:
        addr = literal_address(text)
        if addr is None or not is_public_address(addr):
            raise BlockedAddress(f"{host} resolves to a non-public address")
    return addresses
