"""The PDS side of the application context: one pool, the writer, the instance PDS."""

from __future__ import annotations

from dataclasses import dataclass

from coves.pds.client import PdsClient, PdsConnections
from coves.pds.writes import RepoWriter


@dataclass(frozen=True, eq=False)
class PdsServices:
    """Everything that calls a PDS takes its client and writer from here.

    ``instance_url`` is ``PDS_URL``, the PDS that hosts this instance's communities;
    users' own PDSes are reached with :meth:`client` and the URL from their DID document.
    """

    connections: PdsConnections
    writer: RepoWriter
    instance_url: str

    @property
    def instance(self) -> PdsClient:
        return self.connections.client(self.instance_url)

    def client(self, url: str) -> PdsClient:
        return self.connections.client(url)

    async def aclose(self) -> None:
        await self.connections.aclose()
