"""social.coves.admin.submitReport: users report content to the instance's admins."""

from __future__ import annotations

from typing import Any

from coves.writes.reports import submit_report
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.procedure("social.coves.admin.submitReport", viewer_limits=("user_reports",))
async def admin_submit_report(req: XRPCRequest) -> dict[str, Any]:
    return await submit_report(req.ctx.db, req.require_viewer().did, req.body)
