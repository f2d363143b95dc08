"""Communities hosted on this instance's PDS: provisioning, sessions, profile writes.

- :mod:`coves.hosting.service`: create (crash-safe, idempotent), update, soft delete.
- :mod:`coves.hosting.sessions`: keeping each community's PDS session usable.
- :mod:`coves.hosting.refresher`: when the refresher child renews sessions.
- :mod:`coves.hosting.credentials`: sealing the password and tokens at rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coves.config import Settings
from coves.db import Database
from coves.hosting.service import CommunityHosting, HostingPolicy
from coves.hosting.sessions import CommunitySessions
from coves.ingest.parse import RecordValidator
from coves.metrics import Metrics
from coves.secrets import SecretBox

if TYPE_CHECKING:
    from coves.pds.services import PdsServices


def build_hosting(
    settings: Settings,
    db: Database,
    pds: PdsServices,
    *,
    metrics: Metrics,
    validator: RecordValidator | None,
) -> CommunityHosting:
    def box() -> SecretBox:
        return settings.secret_box()

    sessions = CommunitySessions(db, box, pds.connections, metrics=metrics)
    return CommunityHosting(
        db,
        policy=HostingPolicy.from_settings(settings),
        box=box,
        pds=pds,
        sessions=sessions,
        validator=validator,
    )


__all__ = ["CommunityHosting", "CommunitySessions", "HostingPolicy", "build_hosting"]
