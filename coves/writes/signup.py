"""social.coves.actor.signup: an account on this instance's PDS (the signup proxy).

Coves checks the request, asks the PDS which user domains it hosts and
whether it requires invite codes, mints one with the PDS admin password when
it does and the caller brought none, and creates the account. The PDS
session createAccount returns is ended at once: the new user signs in
through Coves' OAuth flow like everyone else, so no password-based session
outlives the call. The account is recorded on the users row so it is known
before its first event arrives from the stream.
"""

from __future__ import annotations

import re
from typing import Any

from coves import clock
from coves.atproto.syntax import normalize_handle
from coves.config import Settings
from coves.db import Database
from coves.db.queries import identity as identity_q
from coves.db.queries import oauth as oauth_q
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.pds import AdminAuth, BearerAuth, PdsClient, PdsError, PdsRejected
from coves.secrets import Secret

log = get_logger(__name__)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REFUSALS = {
    "InvalidHandle": (400, "InvalidHandle"),
    "UnsupportedDomain": (400, "InvalidHandle"),
    "HandleNotAvailable": (409, "HandleNotAvailable"),
    "InvalidInviteCode": (400, "InvalidInviteCode"),
    "InvalidPassword": (400, "InvalidPassword"),
    "InvalidEmail": (400, "InvalidEmail"),
}


def _refused(exc: PdsRejected) -> XRPCError:
    """The PDS's refusal in the names the signup lexicon declares."""
    name = exc.pds_error or ""
    text = exc.message.lower()
    # The reference PDS answers a taken or reserved handle as InvalidRequest.
    if "already taken" in text or "reserved" in text:
        name = "HandleNotAvailable"
    status, error = REFUSALS.get(name, (400, "InvalidRequest"))
    detail = exc.message.split(": ", 1)[1] if ": " in exc.message else exc.message
    return XRPCError(status, error, f"the PDS refused the account: {detail}")


async def signup(
    db: Database, settings: Settings, pds: PdsClient, body: dict[str, Any]
) -> dict[str, Any]:
    handle = normalize_handle(str(body["handle"]))
    email = str(body["email"]).strip()
    if not EMAIL_RE.match(email):
        raise XRPCError(400, "InvalidEmail", "email is not an email address")
    server = await pds.describe_server()
    domains = [d for d in server.get("availableUserDomains") or [] if isinstance(d, str)]
    if domains and not any(handle.endswith(d if d.startswith(".") else "." + d) for d in domains):
        raise XRPCError(
            400, "InvalidHandle", f"handles on this instance end with {', '.join(domains)}"
        )
    invite = body.get("inviteCode")
    if invite is None and server.get("inviteCodeRequired") is True:
        if settings.pds_admin_password is None:
            raise XRPCError(400, "InvalidInviteCode", "this instance's PDS requires an invite code")
        invite = await pds.create_invite_code(AdminAuth(settings.pds_admin_password))
    try:
        session = await pds.create_account(
            handle=handle,
            email=email,
            password=Secret(str(body["password"])),
            invite_code=invite if isinstance(invite, str) else None,
        )
    except PdsRejected as exc:
        raise _refused(exc) from None
    try:
        await pds.delete_session(BearerAuth(session.refresh_jwt.reveal()))
    except PdsError as exc:  # the account exists; a lingering PDS session is not worth failing on
        log.info("could not end the signup's PDS session", did=session.did, error=exc.error)
    await oauth_q.ensure_user(db, session.did)
    await identity_q.set_user_identity(
        db, session.did, session.handle, pds.base_url, clock.utcnow()
    )
    log.info("account created on the instance PDS", did=session.did)
    return {"did": session.did, "handle": session.handle}
