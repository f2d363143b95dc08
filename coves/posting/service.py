"""post.create, post.update, post.delete and image uploads: every check, then
one write into the community's repository, indexed before the call returns.

Order of a create (cheap refusals first, the network last):

1. the community, in any identifier form, exists (the read rules' answer:
   indexed, verified, not deleted, its account active);
2. the poster may post there, decided with the read side's rules and
   relations: a private community only for its members (subscribers and its
   creator) and the aggregators it enabled, and to anyone else it does not
   exist (404, as ``community.get`` answers); no block between poster and
   community in either direction (a community block by the poster, or a
   user block either way); an aggregator (API key, or an account with an
   ``aggregator.service`` record) only with an enabled authorization;
3. the content rules accept the embed kind sent;
4. a reservation in the submission ledger, under a per-poster lock: the same
   link in the same community within the hour is a 409, the hourly limits
   (``POSTS_PER_HOUR`` per account, ``AGGREGATOR_POSTS_PER_HOUR`` per
   aggregator and community) are a 429;
5. the embed is prepared (link card, thumbnail, quoted Bluesky post), the
   content rules checked again on the result, the record validated against
   the post lexicon, then written and indexed (``CommunityRepo``).

A failure after the reservation releases it, so a failed write counts against
no limit; a PDS that is down is a 503 with nothing written or indexed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from coves import clock
from coves.atproto.syntax import format_datetime, parse_record_uri
from coves.auth.base import Viewer
from coves.db import Database, Row
from coves.db.queries import aggregators as agg_sql
from coves.db.queries import posting as sql
from coves.errors import XRPCError, invalid_request
from coves.lexicon.errors import LexiconValidationError
from coves.lexicon.registry import LexiconRegistry
from coves.logs import get_logger
from coves.media.images import ImageRejected, blob_limits, inspect_image
from coves.metrics import Metrics
from coves.posting.embeds import EmbedPreparer, external_link
from coves.posting.repo import CommunityRepo
from coves.posting.rules import ContentRules, violation
from coves.read import facts, relations
from coves.read.communities import exists, resolve
from coves.read.rules import Why, may_read_community, may_write_in
from coves.read.services import ReadServices
from coves.unfurl.providers import normalize_url

log = get_logger(__name__)

POST = "social.coves.community.post"
EDITABLE = ("title", "content", "facets", "embed", "langs", "labels", "tags")
PASSED_THROUGH = ("originalAuthor", "federatedFrom", "location")


@dataclass(frozen=True)
class PostingLimits:
    per_hour: int = 20
    aggregator_per_hour: int = 10


def not_found(message: str = "no such community") -> XRPCError:
    return XRPCError(404, "CommunityNotFound", message)


def not_authorized(message: str) -> XRPCError:
    return XRPCError(403, "NotAuthorized", message)


class PostService:
    def __init__(
        self,
        *,
        db: Database,
        read: ReadServices,
        lexicons: LexiconRegistry,
        repo: CommunityRepo,
        embeds: EmbedPreparer,
        limits: PostingLimits,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._read = read
        self._lexicons = lexicons
        self._repo = repo
        self._embeds = embeds
        self._limits = limits
        self.image_limits = blob_limits(
            lexicons.document("social.coves.embed.images"), "image", "image"
        )
        self._refused = (
            metrics.counter(
                "coves_posts_refused_total", "post.create calls refused, by reason", ["reason"]
            )
            if metrics is not None
            else None
        )

    def _refuse(self, reason: str, error: XRPCError) -> XRPCError:
        if self._refused is not None:
            self._refused.labels(reason).inc()
        return error

    # -- checks ---------------------------------------------------------------------------
    async def _community(self, ident: str) -> Row:
        row = await resolve(self._db, self._read, ident)
        if row is None or not exists(row):
            raise not_found()
        return row

    async def _is_aggregator(self, viewer: Viewer) -> bool:
        return viewer.method == "api_key" or await sql.has_service_record(self._db, viewer.did)

    async def _may_post(self, viewer: Viewer, community: Row, *, aggregator: bool) -> None:
        did = community["did"]
        state = await relations.load(self._db, viewer.did, communities=[did], actors=[did])
        rel = state.relations
        authorized = False
        if aggregator:
            auth = await agg_sql.authorization(self._db, did, viewer.did)
            authorized = auth is not None and bool(auth["enabled"])
        # A private community is for its members; to anyone else it does not exist
        # (as community.get answers), except to an aggregator its moderators enabled.
        if may_read_community(facts.community(community), rel) is not None and not authorized:
            raise self._refuse("private", not_found())
        blocked = may_write_in(did, rel)
        if blocked is Why.BLOCKED_COMMUNITY:
            raise self._refuse(
                "blocked", not_authorized("you block this community; unblock it to post here")
            )
        if blocked is not None:
            raise self._refuse("blocked", not_authorized(blocked.message))
        if aggregator and not authorized:
            raise self._refuse(
                "aggregator_not_authorized",
                not_authorized("this aggregator is not enabled in this community"),
            )

    async def _rules(self, community: str) -> ContentRules:
        return ContentRules.parse(await sql.content_rules(self._db, community))

    def _check_rules(self, content_rules: ContentRules, embed: Any) -> None:
        why = violation(content_rules, embed)
        if why is not None:
            raise self._refuse("content_rules", XRPCError(400, "ContentRuleViolation", why))

    def _validate(self, record: dict[str, Any]) -> None:
        try:
            self._lexicons.validate_record(POST, record)
        except LexiconValidationError as exc:
            raise invalid_request(f"the post would not be a valid record: {exc}") from None

    async def _prepare(
        self, community: str, embed: Any, thumbnail_url: str | None
    ) -> dict[str, Any] | None:
        async def upload(data: bytes, mime: str) -> dict[str, Any]:
            return await self._repo.upload_blob(community, data, mime)

        return await self._embeds.prepare(embed, upload=upload, thumbnail_url=thumbnail_url)

    # -- create ---------------------------------------------------------------------------
    async def create(self, viewer: Viewer, body: Mapping[str, Any]) -> dict[str, Any]:
        for forbidden in ("author", "authorDid"):
            if forbidden in body:
                raise invalid_request(f"{forbidden} must not be sent: the author is the caller")
        if not any(body.get(k) for k in ("title", "content", "embed")):
            raise invalid_request("a post needs a title, content or an embed")
        community = await self._community(str(body["community"]))
        did = community["did"]
        aggregator = await self._is_aggregator(viewer)
        thumbnail_url = body.get("thumbnailUrl")
        if thumbnail_url is not None and not aggregator:
            raise invalid_request("thumbnailUrl may only be sent by aggregators")
        await self._may_post(viewer, community, aggregator=aggregator)
        content_rules = await self._rules(did)
        self._check_rules(content_rules, body.get("embed"))
        link_uri = external_link(body.get("embed"))
        link = normalize_url(link_uri) if link_uri else None
        now = clock.utcnow()
        outcome, reservation = await sql.reserve(
            self._db,
            sql.Submission(
                author=viewer.did,
                community=did,
                link=link,
                aggregator=aggregator,
                now=now,
                per_hour=self._limits.per_hour,
                aggregator_per_hour=self._limits.aggregator_per_hour,
            ),
        )
        if reservation is None:
            raise await self._limit_error(outcome, viewer.did, did, aggregator)
        try:
            embed = await self._prepare(did, body.get("embed"), thumbnail_url)
            self._check_rules(content_rules, embed)
            record: dict[str, Any] = {
                "$type": POST,
                "community": did,
                "author": viewer.did,
                "createdAt": format_datetime(now),
            }
            for key in (*EDITABLE, *PASSED_THROUGH):
                value = embed if key == "embed" else body.get(key)
                if value is not None:
                    record[key] = value
            self._validate(record)
            stored = await self._repo.create(did, POST, record)
        except BaseException:
            with trio.CancelScope(shield=True):
                await sql.release(self._db, reservation)
            raise
        await sql.confirm(self._db, reservation, stored.uri)
        log.info("post created", uri=stored.uri, aggregator=aggregator)
        return {"uri": stored.uri, "cid": stored.cid}

    async def _limit_error(
        self, outcome: str, author: str, community: str, aggregator: bool
    ) -> XRPCError:
        if outcome == "duplicate":
            return self._refuse(
                "duplicate",
                XRPCError(
                    409,
                    "DuplicatePost",
                    "you posted this link to this community within the last hour",
                ),
            )
        scope = community if aggregator else None
        wait = await sql.retry_after(self._db, author, scope, clock.utcnow())
        limit = self._limits.aggregator_per_hour if aggregator else self._limits.per_hour
        where = " in this community" if aggregator else ""
        return self._refuse(
            outcome,
            XRPCError(
                429,
                "RateLimitExceeded",
                f"at most {limit} posts an hour{where}; retry later",
                headers={"Retry-After": str(int(wait))},
            ),
        )

    # -- update / delete ------------------------------------------------------------------
    async def _stored_post(self, uri: str) -> Row:
        try:
            parsed = parse_record_uri(uri)
        except ValueError as exc:
            raise invalid_request(f"uri: {exc}") from None
        if parsed.collection != POST:
            raise invalid_request(f"uri must name a {POST} record")
        row = await sql.post(self._db, uri)
        if row is None or (row["deleted_at"] is not None and row["withheld"] is None):
            raise XRPCError(404, "PostNotFound", "no such post")
        return row

    async def update(self, viewer: Viewer, body: Mapping[str, Any]) -> dict[str, Any]:
        row = await self._stored_post(str(body["uri"]))
        if row["author_did"] != viewer.did:
            raise not_authorized("only the author may edit a post")
        expected = body.get("cid")
        if expected is not None and expected != row["cid"]:
            raise XRPCError(
                409, "InvalidSwap", "the post was edited since the version you edited; reload it"
            )
        community = await self._community(row["community_did"])
        did = community["did"]
        content_rules = await self._rules(did)
        self._check_rules(content_rules, body.get("embed"))
        old: dict[str, Any] = row["record"]
        embed = body.get("embed")
        if embed is not None and embed == old.get("embed"):
            prepared: dict[str, Any] | None = embed  # unchanged: no second card fetch
        else:
            prepared = await self._prepare(did, embed, None)
        self._check_rules(content_rules, prepared)
        record: dict[str, Any] = {
            "$type": POST,
            "community": did,
            "author": row["author_did"],
            "createdAt": old.get("createdAt") or format_datetime(clock.utcnow()),
        }
        for key in PASSED_THROUGH:
            if old.get(key) is not None:
                record[key] = old[key]
        for key in EDITABLE:
            value = prepared if key == "embed" else body.get(key)
            if value is not None:
                record[key] = value
        if not any(record.get(k) for k in ("title", "content", "embed")):
            raise invalid_request("a post needs a title, content or an embed")
        self._validate(record)
        # Swap on the CID this server last indexed: an edit that reached the PDS in
        # between (another device, a race) makes the PDS refuse with InvalidSwap.
        stored = await self._repo.put(did, POST, row["rkey"], record, swap_record=row["cid"])
        log.info("post updated", uri=stored.uri)
        return {"uri": stored.uri, "cid": stored.cid}

    async def delete(self, viewer: Viewer, body: Mapping[str, Any]) -> dict[str, Any]:
        row = await self._stored_post(str(body["uri"]))
        if viewer.did not in (row["author_did"], row["community_created_by"]):
            raise not_authorized("only the author or the community's creator may delete a post")
        await self._repo.delete(row["community_did"], POST, row["rkey"])
        log.info("post deleted", uri=row["uri"], by_author=viewer.did == row["author_did"])
        return {}

    # -- images ---------------------------------------------------------------------------
    async def upload_image(self, viewer: Viewer, ident: str, data: bytes) -> dict[str, Any]:
        community = await self._community(ident)
        aggregator = await self._is_aggregator(viewer)
        await self._may_post(viewer, community, aggregator=aggregator)
        try:
            info = await trio.to_thread.run_sync(inspect_image, data, self.image_limits)
        except ImageRejected as exc:
            raise XRPCError(exc.status, exc.error, exc.message) from None
        blob = await self._repo.upload_blob(community["did"], data, info.mime)
        return {"blob": blob, "aspectRatio": info.aspect_ratio}
