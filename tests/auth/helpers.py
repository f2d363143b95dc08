from __future__ import annotations

from dataclasses import dataclass, field

from coves.atproto.keys import PrivateKey
from coves.auth.authenticator import CovesAuthenticator
from coves.auth.base import AuthInput
from coves.auth.service_auth import ServiceAuthVerifier
from coves.identity import IdentityResolver
from tests.support.fake_did import PLC_URL, FakeNetwork

SERVICE_DID = "did:web:coves.test"
SERVICE_AUD = "did:web:coves.test#coves_appview"
ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
NSID = "social.coves.test.whoami"
URL = "https://coves.test/xrpc/social.coves.test.whoami"


@dataclass
class World:
    net: FakeNetwork = field(default_factory=FakeNetwork)
    alice_key: PrivateKey = field(default_factory=lambda: PrivateKey.generate("k256"))

    def __post_init__(self) -> None:
        self.net.add_plc(ALICE, self.alice_key, "alice.example.com")
        self.resolver = IdentityResolver(
            fetcher=self.net.fetcher(), plc_url=PLC_URL, txt_lookup=self.net.txt_lookup
        )
        self.service_auth = ServiceAuthVerifier(
            self.resolver, service_did=SERVICE_DID, service_id="coves_appview", max_lifetime=300
        )

    def authenticator(self, **kw: object) -> CovesAuthenticator:
        return CovesAuthenticator(self.service_auth, **kw)  # type: ignore[arg-type]


def request(authorization: str | None, nsid: str = NSID, **headers: str) -> AuthInput:
    hdrs = {k.lower().replace("_", "-"): v for k, v in headers.items()}
    if authorization is not None:
        hdrs["authorization"] = authorization
    return AuthInput(http_method="GET", url=URL, nsid=nsid, headers=hdrs)
