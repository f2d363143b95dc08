"""An in-process XRPC client for the posting tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from quart_trio import QuartTrio

from coves.lexicon.registry import LexiconRegistry
from tests.support.auth import auth_header


class Client:
    """XRPC calls on an app in-process; successful responses are checked against
    the method's output lexicon."""

    def __init__(self, app: QuartTrio, lexicons: LexiconRegistry) -> None:
        self._client = app.test_client()
        self._lexicons = lexicons

    def _headers(self, viewer: str | None, token: str | None) -> dict[str, str]:
        if token is not None:
            return {"Authorization": f"Bearer {token}"}
        return auth_header(viewer) if viewer else {}

    def _decode(self, nsid: str, status: int, data: bytes) -> tuple[int, Any]:
        body = orjson.loads(data) if data else None
        if status == 200 and self._lexicons.has(nsid):
            self._lexicons.validate_output(nsid, body)
        return status, body

    async def get(
        self,
        nsid: str,
        params: Mapping[str, Any] | None = None,
        *,
        viewer: str | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        from urllib.parse import urlencode

        query: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            for item in value if isinstance(value, list) else [value]:
                query.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
        response = await self._client.get(
            f"/xrpc/{nsid}?{urlencode(query)}", headers=self._headers(viewer, token)
        )
        return self._decode(nsid, response.status_code, await response.get_data())

    async def post(
        self,
        nsid: str,
        body: Any = None,
        *,
        viewer: str | None = None,
        token: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        from urllib.parse import urlencode

        path = f"/xrpc/{nsid}" + (f"?{urlencode(params)}" if params else "")
        headers = self._headers(viewer, token)
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = await self._client.post(
            path, data=orjson.dumps(body) if body is not None else b"", headers=headers
        )
        return self._decode(nsid, response.status_code, await response.get_data())

    async def raw(
        self,
        nsid: str,
        data: bytes,
        *,
        params: Mapping[str, str],
        token: str | None = None,
        viewer: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> tuple[int, Any]:
        """A procedure whose body is bytes (image uploads)."""
        from urllib.parse import urlencode

        headers = {**self._headers(viewer, token), "Content-Type": content_type}
        response = await self._client.post(
            f"/xrpc/{nsid}?{urlencode(params)}", data=data, headers=headers
        )
        return self._decode(nsid, response.status_code, await response.get_data())
