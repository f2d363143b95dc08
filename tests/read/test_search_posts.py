"""feed.searchPosts: PostgreSQL full-text search under the feeds' rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from coves.db import Database
from tests.read.conftest import Client
from tests.support.factories import NOW, Factory

SEARCH = "social.coves.feed.searchPosts"
H = timedelta(hours=1)


def uris(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["post"]["uri"] for item in body["feed"]]


async def test_words_phrases_negation_and_stemming(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        c = await factory.community("c")
        rust_news = await factory.post(c, author, title="Rust news", content="a new compiler")
        news_rust = await factory.post(c, author, title="News", content="about rust and go")
        python = await factory.post(c, author, title="Python news", content="no rust here?")
        running = await factory.post(c, author, title="Running", content="runners run")
        await factory.post(c, author, title="Cooking", content="recipes")

        async def found(q: str) -> set[str]:
            status, body = await client.get(SEARCH, {"q": q})
            assert status == 200, (q, body)
            return set(uris(body))

        assert await found("rust") == {rust_news, news_rust, python}
        assert await found("rust news") == {rust_news, news_rust, python}  # every word
        assert await found('"rust news"') == {rust_news}  # the phrase, in order
        assert await found("rust -python") == {rust_news, news_rust}
        assert await found("run") == {running}  # stemmed: runners, run
        assert await found("the") == set()  # only stop words: nothing to match
        assert await found("zzzunknown") == set()


async def test_relevance_ranks_title_matches_first_and_sorts(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        c = await factory.community("c")
        in_text = await factory.post(
            c, author, title="Other", content="kayak", created_at=NOW, ups=1
        )
        in_title = await factory.post(
            c, author, title="Kayak trip", content="water", created_at=NOW - 5 * H, ups=9
        )
        old = await factory.post(
            c, author, title="Old", content="kayak", created_at=NOW - timedelta(days=3), ups=5
        )
        _, body = await client.get(SEARCH, {"q": "kayak"})
        assert uris(body)[0] == in_title  # title weighs more than text
        _, body = await client.get(SEARCH, {"q": "kayak", "sort": "new"})
        assert uris(body) == [in_text, in_title, old]
        _, body = await client.get(SEARCH, {"q": "kayak", "sort": "top"})
        assert uris(body) == [in_title, old, in_text]
        _, body = await client.get(SEARCH, {"q": "kayak", "sort": "top", "timeframe": "day"})
        assert uris(body) == [in_title, in_text]


async def test_paging_edits_deletes_and_community_scope(
    client: Client, factory: Factory, db: Database
) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        c = await factory.community("c")
        other = await factory.community("other")
        made = await factory.posts(
            c, author, [(NOW - i * H, 0, 0) for i in range(7)], content="glacier"
        )
        elsewhere = await factory.post(other, author, content="glacier")
        seen: list[str] = []
        cursor = None
        while True:
            params = {"q": "glacier", "sort": "new", "limit": "3"}
            status, body = await client.get(
                SEARCH, {**params, **({"cursor": cursor} if cursor else {})}
            )
            assert status == 200, body
            seen += uris(body)
            cursor = body.get("cursor")
            if not cursor:
                break
        assert sorted(seen) == sorted([*made, elsewhere])
        assert len(seen) == len(set(seen)) == 8
        # A cursor is bound to its search.
        _, first = await client.get(SEARCH, {"q": "glacier", "limit": "3"})
        status, err = await client.get(SEARCH, {"q": "other", "cursor": first["cursor"]})
        assert (status, err["error"]) == (400, "InvalidCursor")
        # One community, named in any form.
        for ident in (other, "other", "!other@localhost", "other.community.localhost"):
            _, body = await client.get(SEARCH, {"q": "glacier", "community": ident})
            assert uris(body) == [elsewhere], ident
        _, body = await client.get(SEARCH, {"q": "glacier", "community": "nowhere"})
        assert body == {"feed": []}
        # The search document follows edits and deletes (the trigger on posts).
        await db.execute("UPDATE posts SET content = 'iceberg' WHERE uri = %s", (elsewhere,))
        await factory.delete_post(made[0])
        _, body = await client.get(SEARCH, {"q": "iceberg"})
        assert uris(body) == [elsewhere]
        # (sort=top: a search not frozen in a snapshot yet)
        _, body = await client.get(SEARCH, {"q": "glacier", "sort": "top", "limit": "50"})
        assert uris(body) == made[1:]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "x" * 501},
        {"q": "a", "sort": "hot"},
        {"q": "a", "limit": "0"},
        {"q": "a", "timeframe": "decade"},
        {"q": "a", "community": "!bad"},
    ],
)
async def test_bad_parameters_are_400(client: Client, params: dict[str, str]) -> None:
    with trio.fail_after(10):
        status, body = await client.get(SEARCH, params)
    assert (status, body["error"]) == (400, "InvalidRequest"), params


async def test_cursor_errors(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        c = await factory.community("c")
        await factory.posts(c, author, [(NOW - i * H, 0, 0) for i in range(3)], content="fjord")
        for cursor in ("garbage", "x" * 100):
            status, body = await client.get(SEARCH, {"q": "fjord", "cursor": cursor})
            assert (status, body["error"]) == (400, "InvalidCursor"), cursor
        status, body = await client.get(SEARCH, {"q": "fjord", "limit": "500"})
        assert status == 200 and len(body["feed"]) == 3  # limit clamped to 50
