"""Wait until Coves has indexed everything the seeding wrote (read back through its API)."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from demo.content import Seeded

DISCOVER = "/xrpc/social.coves.feed.getDiscover"
PROFILE = "/xrpc/social.coves.actor.getProfile"


async def feed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(DISCOVER, params={"sort": "new", "limit": 50})
    if response.status_code != 200:
        return []
    items: list[dict[str, Any]] = response.json().get("feed", [])
    return [item["post"] for item in items]


async def handles_shown(client: httpx.AsyncClient, seeded: Seeded) -> int:
    """How many people's profiles show their handle (verified by Coves in the background)."""
    shown = 0
    for handle, did in seeded.dids.items():
        response = await client.get(PROFILE, params={"actor": did})
        if response.status_code == 200 and response.json().get("handle") == handle:
            shown += 1
    return shown


async def wait_indexed(base: str, seeded: Seeded, timeout: float = 180.0) -> None:
    """Every post in the discover feed with all its comments and votes counted, and
    every person's handle verified."""
    want = (len(seeded.posts), seeded.comments, seeded.post_votes)
    last: tuple[int, int, int] = (0, 0, 0)
    handles = 0
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        with trio.move_on_after(timeout):
            while True:
                posts = await feed(client)
                stats = [p.get("stats", {}) for p in posts]
                comments = sum(s.get("commentCount", 0) for s in stats)
                votes = sum(s.get("upvotes", 0) + s.get("downvotes", 0) for s in stats)
                last = (len(posts), comments, votes)
                if last == want:
                    handles = await handles_shown(client, seeded)
                    if handles == len(seeded.dids):
                        return
                await trio.sleep(0.5)
    raise SystemExit(
        f"Coves indexed {last[0]}/{want[0]} posts, {last[1]}/{want[1]} comments and "
        f"{last[2]}/{want[2]} votes on posts, and verified {handles}/{len(seeded.dids)} "
        f"handles in {timeout:.0f} s; see .demo/coves.log"
    )
