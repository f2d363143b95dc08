"""Creating, updating and deleting the communities this instance hosts.

Every community is an account of its own on the instance PDS (``PDS_URL``):
handle ``c-{name}.{instance domain}`` (shown as ``!name@domain``), a generated
email and a strong random password, its profile record (rkey ``self``) in its
own repository, written with its own session.

**Creation is crash-safe and idempotent.** The name is reserved in
``community_accounts`` (primary key on the lowercased name, so two concurrent
creates yield exactly one) together with the sealed password, before the PDS is
asked anything; each step then records how far it got:

1. ``reserved``: the account may or may not exist. A resume first logs in with
   the stored password (a createAccount whose answer was lost did succeed);
   otherwise it sends createAccount (counted durably before it is sent).
2. ``account_created``: the session is stored; the profile is written with
   putRecord (idempotent), then the handle is recorded.
3. ``active``.

A failure that a later attempt may get past (PDS down, a crash, a cancelled
request) leaves the row and its lease expires: the creator's retry of the same
create, or the refresher child's reconcile pass, resumes it. A refusal that no
retry fixes before the account exists (name taken on the PDS, invalid handle)
rolls the reservation back, freeing the name.

Writes go through the write-then-index path (``coves.pds.writes``), so the
community is readable through every read endpoint when the call returns.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import trio

from coves import clock
from coves.atproto.syntax import is_valid_community_name
from coves.config import Settings
from coves.db import Database, Row
from coves.db.queries import community_accounts as q
from coves.errors import XRPCError, invalid_request, not_found
from coves.hosting.credentials import Credentials, jwt_expiry, seal, unseal
from coves.hosting.profile import PROFILE, SELF, check_profile, new_profile, updated_profile
from coves.hosting.sessions import CommunitySessions
from coves.ingest.parse import RecordValidator
from coves.logs import get_logger
from coves.media.profile_images import Image, decode_image, profile_limits
from coves.pds.auth import AdminAuth, PdsAuth
from coves.pds.client import PdsClient, PdsSession, RecordValue
from coves.pds.errors import PdsAuthError, PdsConflict, PdsNotFound, PdsRejected, PdsUnavailable
from coves.pds.services import PdsServices
from coves.secrets import Secret, SecretBox

log = get_logger(__name__)

HANDLE_PREFIX = "c-"
# The reference PDS allows 3-18 characters before a service domain; "c-" takes two.
MAX_NAME_LENGTH = 16
PROVISION_LEASE_SECONDS = 120.0
RESUME_IDLE_SECONDS = 30.0
IMAGE_FIELDS = (
    ("avatarBlob", "avatarMimeType", "avatar"),
    ("bannerBlob", "bannerMimeType", "banner"),
)


@dataclass(frozen=True)
class Expiring:
    """A hosted community whose session the refresher should renew soon."""

    name: str
    expires_at: datetime | None  # None: no usable token stored (renew now)
    locked_out: bool = False


@dataclass(frozen=True)
class HostingPolicy:
    instance_did: str
    instance_domain: str
    pds_url: str
    admin_password: Secret | None
    creators: frozenset[str]
    creates_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HostingPolicy:
        return cls(
            instance_did=settings.instance_did,
            instance_domain=settings.instance_domain,
            pds_url=settings.pds_url,
            admin_password=settings.pds_admin_password,
            creators=frozenset(settings.community_creators),
            creates_per_day=settings.community_creates_per_day,
        )

    def handle(self, name: str) -> str:
        return f"{HANDLE_PREFIX}{name}.{self.instance_domain}"

    def email(self, name: str) -> str:
        return f"{HANDLE_PREFIX}{name}@{self.instance_domain}"


class CommunityHosting:
    def __init__(
        self,
        db: Database,
        *,
        policy: HostingPolicy,
        box: Callable[[], SecretBox],
        pds: PdsServices,
        sessions: CommunitySessions,
        validator: RecordValidator | None,
    ) -> None:
        self.db = db
        self.policy = policy
        self._box = box
        self.pds = pds
        self.sessions = sessions
        self._validator = validator

    # ---- create ---------------------------------------------------------------------

    async def create(self, creator: str, body: Mapping[str, Any]) -> dict[str, Any]:
        policy = self.policy
        if policy.creators and creator not in policy.creators:
            raise XRPCError(403, "Forbidden", "you may not create communities on this instance")
        for field in ("createdByDid", "hostedByDid"):
            if field in body:
                raise invalid_request(f"{field} is set by the server and must not be sent")
        given = body.get("name")
        if not isinstance(given, str) or not is_valid_community_name(given):
            raise invalid_request("name: letters, digits and inner hyphens (a DNS label)")
        if len(given) > MAX_NAME_LENGTH:
            raise invalid_request(f"name: at most {MAX_NAME_LENGTH} characters")
        name = given.lower()
        images = await read_images(body)
        handle = policy.handle(name)
        profile = new_profile(
            body,
            name=given,
            handle=handle,
            created_by=creator,
            hosted_by=policy.instance_did,
            created_at=clock.utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        check_profile(self._validator, profile)
        password = Secret(secrets.token_urlsafe(32))
        status, row = await q.reserve(
            self.db,
            name=name,
            handle=handle,
            email=policy.email(name),
            pds_url=policy.pds_url,
            created_by=creator,
            profile=profile,
            password_sealed=seal(self._box(), name, "password_sealed", password),
            lease_seconds=PROVISION_LEASE_SECONDS,
            instance_did=policy.instance_did,
            max_per_day=policy.creates_per_day,
        )
        if status == "taken":
            raise XRPCError(409, "NameTaken", f"a community named {name} exists")
        if status == "exists":
            raise XRPCError(409, "AlreadyExists", f"you already created {name}")
        if status == "busy":
            raise XRPCError(409, "AlreadyExists", f"{name} is being created; retry shortly")
        if status == "rate_limited":
            raise XRPCError(
                429,
                "RateLimitExceeded",
                f"at most {policy.creates_per_day} communities a day",
                headers={"Retry-After": "3600"},
            )
        assert row is not None
        log.info("community create", community=name, resumed=status == "resume")
        return await self._finish(row, images)

    async def resume(self, name: str) -> dict[str, Any] | None:
        """Finish an unfinished create nobody is working on (None if leased or done)."""
        row = await q.lease_unfinished(self.db, name, PROVISION_LEASE_SECONDS)
        if row is None:
            return None
        log.info("resuming an unfinished community create", community=name, state=row["state"])
        return await self._finish(row, {})

    async def reconcile(self, limit: int = 20) -> int:
        """Resume unfinished creates whose worker is gone; returns how many finished."""
        finished = 0
        for name in await q.unfinished_names(self.db, RESUME_IDLE_SECONDS, limit):
            try:
                if await self.resume(name) is not None:
                    finished += 1
            except XRPCError as exc:
                log.warning("resuming a community create failed", community=name, error=exc.error)
        return finished

    # ---- posting's credentials (coves.posting.pds_repo.CommunityCredentials) --------------

    async def auth_for(self, community: str) -> tuple[str, PdsAuth]:
        """(PDS URL, auth) for writing to a community hosted here; its session renews
        itself before it expires and once on a 401. 400 ``CommunityNotHostedHere``
        for a community this instance does not host (or has deleted)."""
        row = await q.by_did(self.db, community)
        if row is None or row["state"] != "active":
            raise XRPCError(
                400, "CommunityNotHostedHere", "the community is not hosted on this instance"
            )
        creds = await self.sessions.load(row["name"])
        return creds.pds_url, self.sessions.auth(creds)

    # ---- the refresher's source (nurseries.community_refresher.RefreshSource) ----------

    async def expiring(self, before: datetime, limit: int) -> list[Expiring]:
        rows = await q.expiring(self.db, before, limit)
        return [Expiring(r["name"], r["access_expires_at"], r["locked_out"]) for r in rows]

    async def refresh(self, name: str) -> None:
        await self.sessions.refresh(name)

    async def _finish(self, row: Row, images: Mapping[str, Image]) -> dict[str, Any]:
        name = row["name"]
        try:
            if row["state"] == "reserved":
                await self._ensure_account(row)
            creds = await self.sessions.load(name)
            client = self.pds.client(creds.pds_url)
            auth = self.sessions.auth(creds)
            profile = dict(row["profile"])
            profile.update(await self._upload(client, auth, images))
            check_profile(self._validator, profile)
            await q.set_identity(self.db, creds.did, creds.handle, creds.pds_url)
            written = await self.pds.writer.put(
                client,
                auth,
                repo=creds.did,
                collection=PROFILE,
                rkey=SELF,
                record=profile,
                operation="create",
            )
            await q.activate(self.db, name)
        except XRPCError as exc:
            # The lease is given back: the creator's retry or the reconcile pass resumes.
            # (A rolled-back reservation no longer has a row; this is then a no-op.)
            await q.release(self.db, name, f"{exc.error}: {exc.message}"[:300])
            raise
        log.info("community created", community=name, did=creds.did)
        return {"uri": written.uri, "cid": written.cid, "did": creds.did, "handle": creds.handle}

    async def _ensure_account(self, row: Row) -> None:
        """Make sure the account exists and its session is stored (state account_created)."""
        name, handle = row["name"], row["handle"]
        client = self.pds.client(row["pds_url"])
        password = unseal(self._box(), name, "password_sealed", row["password_sealed"])
        session: PdsSession | None = None
        if row["create_attempts"] > 0:
            # An earlier createAccount may have succeeded with its answer lost.
            try:
                session = await client.create_session(identifier=handle, password=password)
            except PdsAuthError:
                session = None  # no such account, or not ours
        if session is None:
            invite = None
            if self.policy.admin_password is not None:
                invite = await client.create_invite_code(AdminAuth(self.policy.admin_password))
            await q.note_create_attempt(self.db, name)
            try:
                session = await client.create_account(
                    handle=handle, email=row["email"], password=password, invite_code=invite
                )
            except PdsRejected as exc:
                await q.abandon(self.db, name)
                raise _creation_refused(name, exc) from None
        box = self._box()
        await q.account_created(
            self.db,
            name,
            did=session.did,
            access_sealed=seal(box, name, "access_sealed", session.access_jwt),
            refresh_sealed=seal(box, name, "refresh_sealed", session.refresh_jwt),
            access_expires_at=jwt_expiry(session.access_jwt),
            refresh_expires_at=jwt_expiry(session.refresh_jwt),
        )

    async def _upload(
        self, client: PdsClient, auth: PdsAuth, images: Mapping[str, Image]
    ) -> dict[str, Any]:
        refs: dict[str, Any] = {}
        for field, image in images.items():
            refs[field] = await client.upload_blob(auth, image.data, image.mime)
        return refs

    # ---- update, delete, restore ---------------------------------------------------------

    async def _target(self, caller: str, did: str) -> _Target:
        """The community ``caller`` may change, with its session and current profile."""
        row = await q.by_did(self.db, did)
        if row is None or row["state"] != "active":
            raise not_found("no such community on this instance")
        if row["created_by"] != caller:
            raise XRPCError(403, "Forbidden", "only the community's creator may change it")
        creds = await self.sessions.load(row["name"])
        client = self.pds.client(creds.pds_url)
        try:
            current = await client.get_record(repo=did, collection=PROFILE, rkey=SELF)
        except PdsNotFound:
            current = None
        return _Target(row, creds, client, self.sessions.auth(creds), current)

    async def update(self, caller: str, body: Mapping[str, Any]) -> dict[str, Any]:
        did = body["communityDid"]
        images = await read_images(body)
        target = await self._target(caller, did)
        client, auth, current = target.client, target.auth, target.current
        if current is None:
            raise not_found("the community has no profile record")
        record = updated_profile(current.value, body)
        record.update(await self._upload(client, auth, images))
        check_profile(self._validator, record)
        try:
            written = await self.pds.writer.put(
                client,
                auth,
                repo=did,
                collection=PROFILE,
                rkey=SELF,
                record=record,
                swap_record=current.cid,
            )
        except PdsConflict:
            raise XRPCError(
                409,
                "InvalidSwap",
                "the community profile changed while it was being updated; read it and retry",
            ) from None
        return {"uri": written.uri, "cid": written.cid, "did": did, "handle": target.creds.handle}

    async def delete(self, caller: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Soft delete: the profile record goes, so the community and its posts are hidden
        everywhere; the account, credentials and last profile stay for a restore."""
        did = body["communityDid"]
        target = await self._target(caller, did)
        row, current = target.row, target.current
        if current is not None:
            try:
                await self.pds.writer.delete(
                    target.client,
                    target.auth,
                    repo=did,
                    collection=PROFILE,
                    rkey=SELF,
                    swap_record=current.cid,
                )
            except PdsConflict:
                raise XRPCError(
                    409, "InvalidSwap", "the community profile changed meanwhile; retry"
                ) from None
        await q.mark_deleted(
            self.db, row["name"], current.value if current is not None else row["profile"]
        )
        log.info("community deleted", community=row["name"], did=did)
        return {"did": did}

    async def restore(self, name: str) -> dict[str, Any]:
        """Undo a soft delete: write the last profile back (``coves communities restore``)."""
        row = await q.by_name(self.db, name.lower())
        if row is None or row["state"] != "deleted":
            raise not_found(f"no deleted community named {name}")
        creds = await self.sessions.load_deleted(row["name"])
        client = self.pds.client(creds.pds_url)
        written = await self.pds.writer.put(
            client,
            self.sessions.auth(creds),
            repo=creds.did,
            collection=PROFILE,
            rkey=SELF,
            record=dict(row["profile"]),
            operation="create",
        )
        await q.mark_restored(self.db, row["name"])
        return {"uri": written.uri, "cid": written.cid, "did": creds.did, "handle": creds.handle}


@dataclass(frozen=True)
class _Target:
    row: Row
    creds: Credentials
    client: PdsClient
    auth: PdsAuth
    current: RecordValue | None  # the profile record now (None when there is none)


async def read_images(body: Mapping[str, Any]) -> dict[str, Image]:
    """The avatar/banner of a create or update input, decoded and inspected (record
    field -> image), off the event loop."""
    images: dict[str, Image] = {}
    for blob_field, mime_field, record_field in IMAGE_FIELDS:
        encoded = body.get(blob_field)
        if encoded is None:
            continue
        declared = body.get(mime_field)
        limits = profile_limits(record_field)
        images[record_field] = await trio.to_thread.run_sync(
            decode_image,
            blob_field,
            encoded,
            declared if isinstance(declared, str) else None,
            limits,
        )
    return images


def _creation_refused(name: str, exc: PdsRejected) -> XRPCError:
    message = exc.message.lower()
    if exc.pds_error == "HandleNotAvailable" or "already taken" in message or "reserved" in message:
        return XRPCError(409, "NameTaken", f"the name {name} is not available")
    if exc.pds_error == "InvalidInviteCode":
        return XRPCError(
            502,
            "UpstreamFailure",
            "the instance PDS requires invite codes; the operator must set PDS_ADMIN_PASSWORD",
        )
    if exc.pds_error in ("InvalidHandle", "UnsupportedDomain"):
        return XRPCError(
            400, "InvalidRequest", f"the instance PDS refused the handle: {exc.message}"
        )
    return exc


__all__ = ["CommunityHosting", "HostingPolicy", "PdsUnavailable"]
