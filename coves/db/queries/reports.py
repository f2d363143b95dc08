"""SQL for user reports to the instance's admins."""

from __future__ import annotations

from coves.db import Database, Row


async def insert_report(
    db: Database,
    *,
    reporter_did: str,
    target_uri: str,
    target_type: str,
    target_did: str,
    reason: str,
    explanation: str | None,
) -> int:
    report_id = await db.fetchval(
        "INSERT INTO admin_reports "
        "(reporter_did, target_uri, target_type, target_did, reason, explanation) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (reporter_did, target_uri, target_type, target_did, reason, explanation),
    )
    return int(report_id)


async def list_reports(db: Database, *, status: str | None, limit: int) -> list[Row]:
    return await db.fetch(
        "SELECT id, reporter_did, target_uri, target_type, target_did, reason, explanation, "
        "status, created_at, updated_at FROM admin_reports "
        "WHERE %(status)s::text IS NULL OR status = %(status)s "
        "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        {"status": status, "limit": limit},
    )


async def set_status(db: Database, report_id: int, status: str) -> bool:
    changed = await db.execute(
        "UPDATE admin_reports SET status = %s, updated_at = now() WHERE id = %s",
        (status, report_id),
    )
    return changed == 1
