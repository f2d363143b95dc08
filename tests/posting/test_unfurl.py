"""Link cards from real pages served on loopback, through the safe fetcher."""

from __future__ import annotations

import orjson
import pytest
import trio

from coves.db import Database
from coves.media.images import ImageLimits
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.unfurl.providers import OEmbedProvider, bluesky_post, normalize_url, route
from coves.unfurl.service import Unfurler
from tests.support.http_server import Reply, TestHTTPServer, http_server
from tests.support.images import make_image

THUMBS = ImageLimits(frozenset({"image/jpeg", "image/png", "image/webp"}), 1_000_000)

ARTICLE = b"""<!doctype html><html><head>
<meta charset="utf-8">
<title>Fallback title</title>
<meta property="og:title" content="Rivers  of   Trio">
<meta property="og:description" content="How structured concurrency
 keeps a server honest.">
<meta property="og:image" content="/img/cover.png">
<meta property="og:type" content="article">
<meta property="og:site_name" content="The Test Times">
</head><body><p>text</p></body></html>"""


def unfurler(srv: TestHTTPServer, db: Database | None = None, **kw: object) -> Unfurler:
    fetcher = SafeFetcher(resolve=srv.resolve, allow_private=True)
    return Unfurler(fetcher, db=db, metrics=Metrics(), **kw)  # type: ignore[arg-type]


async def test_opengraph_card_with_absolute_image_and_cache(db: Database) -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            url = srv.route("news.test", "/a/1", Reply(body=ARTICLE))
            srv.route(
                "news.test",
                "/img/cover.png",
                Reply(body=make_image("PNG"), content_type="image/png"),
            )
            service = unfurler(srv, db)
            card = await service.card(url + "#comments")
            assert card is not None
            assert card.title == "Rivers of Trio"
            assert card.description == "How structured concurrency keeps a server honest."
            assert card.image == srv.url("news.test", "/img/cover.png")
            assert (card.embed_type, card.provider) == ("article", "opengraph")
            assert srv.hits("news.test", "/a/1") == 1
            # Cached in the database (a second Unfurler shares it): no second request.
            again = await unfurler(srv, db).card(url)
            assert again == card
            assert srv.hits("news.test", "/a/1") == 1
            thumb = await service.thumbnail(card.image or "", THUMBS)
            assert thumb is not None and thumb.info.mime == "image/png"
            assert thumb.data == make_image("PNG")


async def test_title_and_description_fall_back_to_plain_html_in_its_charset() -> None:
    page = (
        "<html><head><meta http-equiv='x' content='y'><title> Caf\u00e9  menu </title>"
        "<meta name='description' content='Cr\u00eapes all day'></head></html>"
    ).encode("latin-1")
    with trio.fail_after(15):
        async with http_server() as srv:
            url = srv.route(
                "cafe.test", "/", Reply(body=page, content_type="text/html; charset=ISO-8859-1")
            )
            card = await unfurler(srv).card(url)
            assert card is not None
            assert (card.title, card.description) == ("Caf\u00e9 menu", "Cr\u00eapes all day")
            assert card.image is None and card.embed_type == "website"


async def test_redirects_are_followed_and_a_direct_image_link_is_its_own_preview() -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            srv.route(
                "short.test", "/x", Reply(301, headers={"location": srv.url("img.test", "/p.jpg")})
            )
            srv.route(
                "img.test", "/p.jpg", Reply(body=make_image("JPEG"), content_type="image/jpeg")
            )
            card = await unfurler(srv).card(srv.url("short.test", "/x"))
            assert card is not None
            assert (card.image, card.embed_type) == (srv.url("img.test", "/p.jpg"), "image")


async def test_oembed_provider_gives_video_card() -> None:
    answer = {
        "type": "video",
        "title": "Trio in 10 minutes",
        "author_name": "Nathaniel",
        "provider_name": "YouTube",
        "thumbnail_url": "https://i.ytimg.test/vi/abc/hq.jpg",
    }
    with trio.fail_after(15):
        async with http_server() as srv:
            srv.route(
                "oembed.test",
                "/oembed",
                lambda target: Reply(body=orjson.dumps(answer), content_type="application/json"),
            )
            youtube = OEmbedProvider(
                "youtube", frozenset({"youtube.test"}), srv.url("oembed.test", "/oembed")
            )
            service = unfurler(srv, oembed=[youtube])
            card = await service.card("https://youtube.test/watch?v=abc")
            assert card is not None
            assert (card.title, card.description) == ("Trio in 10 minutes", "By Nathaniel")
            assert (card.embed_type, card.provider) == ("video", "youtube")
            assert card.image == "https://i.ytimg.test/vi/abc/hq.jpg"
            # The page itself was never fetched, only the endpoint, with the URL as a parameter.
            [(host, target)] = srv.requests
            assert host == "oembed.test"
            assert "url=https%3A%2F%2Fyoutube.test%2Fwatch%3Fv%3Dabc" in target
            assert "format=json" in target


async def test_missing_pages_are_cached_briefly_as_failures(db: Database) -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            url = srv.url("gone.test", "/nothing")
            service = unfurler(srv, db)
            assert await service.card(url) is None
            assert await service.card(url) is None
            assert srv.hits("gone.test") == 1
            # A 404 proves the site answers: its breaker stays closed.
            assert service.breaker("site:gone.test").consecutive_failures == 0


async def test_a_page_with_nothing_to_show_gives_no_card() -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            url = srv.route("blank.test", "/", Reply(body=b"<html><body>hi</body></html>"))
            assert await unfurler(srv).card(url) is None


async def test_private_addresses_are_never_fetched() -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            srv.route("intranet.test", "/", Reply(body=ARTICLE))
            service = Unfurler(SafeFetcher(resolve=srv.resolve))  # no loopback allowance
            assert await service.card(srv.url("intranet.test", "/")) is None
            assert await service.thumbnail(srv.url("intranet.test", "/"), THUMBS) is None
            assert srv.requests == []


async def test_slow_site_opens_its_breaker_and_later_posts_do_not_wait() -> None:
    with trio.fail_after(20):
        async with http_server() as srv:
            slow = srv.route("slow.test", "/story", Reply(body=ARTICLE, delay=30.0))
            fast = srv.route("fast.test", "/story", Reply(body=ARTICLE))
            service = unfurler(srv, timeout=0.3, breaker_threshold=3)
            for _ in range(3):
                started = trio.current_time()
                assert await service.card(slow) is None
                assert trio.current_time() - started < 2.0  # bounded by the deadline
            assert srv.hits("slow.test") == 3
            started = trio.current_time()
            assert await service.card(slow) is None
            assert trio.current_time() - started < 0.05  # the open breaker answers at once
            assert srv.hits("slow.test") == 3
            # One slow site does not stop cards for the others.
            assert await service.card(fast) is not None


@pytest.mark.parametrize(
    ("image", "size"),
    [(make_image("GIF"), 1_000_000), (b"<html>not an image</html>", 1_000_000)],
)
async def test_thumbnails_must_be_accepted_images(image: bytes, size: int) -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            url = srv.route("img.test", "/t", Reply(body=image, content_type="image/png"))
            assert await unfurler(srv).thumbnail(url, THUMBS) is None


async def test_thumbnail_over_the_lexicon_limit_is_not_read_whole() -> None:
    with trio.fail_after(15):
        async with http_server() as srv:
            url = srv.route("img.test", "/big", Reply(body=b"\x89PNG" + b"0" * 2000))
            small = ImageLimits(THUMBS.accept, 1000)
            assert await unfurler(srv).thumbnail(url, small) is None


async def test_quoted_bluesky_post_is_read_from_the_authors_pds() -> None:
    did = "did:plc:abcdefghijklmnopqrstuvwx"
    uri = f"at://{did}/app.bsky.feed.post/3kabc"
    cid = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"
    with trio.fail_after(15):
        async with http_server() as srv:
            srv.route(
                "pds.test",
                "/xrpc/com.atproto.repo.getRecord",
                lambda target: Reply(
                    body=orjson.dumps({"uri": uri, "cid": cid, "value": {}}),
                    content_type="application/json",
                ),
            )
            service = unfurler(srv)
            link = bluesky_post(f"https://bsky.app/profile/{did}/post/3kabc")
            assert link is not None
            quoted = await service.quoted_post(link, srv.url("pds.test", ""), did)
            assert quoted is not None and (quoted.uri, quoted.cid) == (uri, cid)
            assert "rkey=3kabc" in srv.requests[0][1]
            # A PDS answering for another record is not believed.
            other = bluesky_post(f"https://bsky.app/profile/{did}/post/3kxyz")
            assert other is not None
            assert await service.quoted_post(other, srv.url("pds.test", ""), did) is None


def test_provider_routing_and_url_normalisation() -> None:
    assert route("https://www.youtube.com/watch?v=1").provider == "youtube"
    assert route("https://youtu.be/1").breaker_key == "oembed:youtube"
    assert route("https://old.reddit.com/r/x").provider == "reddit"
    site = route("https://blog.example.com/p")
    assert (site.kind, site.breaker_key) == ("opengraph", "site:blog.example.com")
    assert normalize_url("HTTPS://Example.COM/a?b=1#frag") == "https://example.com/a?b=1"
    assert normalize_url("https://example.com") == "https://example.com/"
    for bad in (
        "javascript:alert(1)",
        "ftp://x.test/",
        "https://u:p@x.test/",
        "https://x.test:99999/",
    ):
        assert normalize_url(bad) is None


def test_bluesky_permalinks() -> None:
    post = bluesky_post("https://bsky.app/profile/Alice.bsky.social/post/3kabc")
    assert post is not None and (post.actor, post.rkey) == ("alice.bsky.social", "3kabc")
    assert bluesky_post("https://bsky.app/profile/did:plc:abc/post/3kabc") is not None
    for other in (
        "https://bsky.app/profile/alice.bsky.social",
        "https://evil.test/profile/alice.bsky.social/post/3kabc",
        "https://bsky.app/profile/not a handle/post/3kabc",
    ):
        assert bluesky_post(other) is None


async def test_breaker_cooldown_and_probe_on_trios_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No database and no sockets: only the mock clock moves."""
    import httpx

    calls: list[str] = []
    healthy = False

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if not healthy:
            await trio.sleep(60)  # slower than any deadline
        return httpx.Response(200, html=ARTICLE.decode())

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    fetcher = SafeFetcher(transport=httpx.MockTransport(handler), resolve=resolve)
    service = Unfurler(fetcher, timeout=2.0, breaker_threshold=3, breaker_cooldown=300.0)
    url = "https://slow.example.com/story"
    for _ in range(3):
        assert await service.card(url) is None
    assert len(calls) == 3
    breaker = service.breaker("site:slow.example.com")
    assert breaker.state.value == "open"
    await trio.sleep(299)
    assert await service.card(url) is None
    assert len(calls) == 3  # still cooling down: no request
    await trio.sleep(2)
    assert breaker.state.value == "half_open"
    assert await service.card(url) is None  # the probe, still slow
    assert len(calls) == 4 and breaker.state.value == "open"
    await trio.sleep(301)
    healthy = True
    card = await service.card(url)  # the next probe succeeds and closes it
    assert card is not None and card.title == "Rivers of Trio"
    assert breaker.state.value == "closed" and len(calls) == 5
