from __future__ import annotations

from coves.auth.authenticator import CovesAuthenticator
from coves.config import test_settings
from coves.context import build_context
from coves.db import Database
from coves.identity import IdentityResolver
from coves.identity.hosted_by import HostedByQueue
from coves.metrics import Metrics
from nurseries.main import capability_children


def test_build_context_wires_identity_auth_and_the_didweb_queue() -> None:
    ctx = build_context(test_settings(), Database("postgresql:///x"), metrics=Metrics())
    assert isinstance(ctx.identity, IdentityResolver)
    assert isinstance(ctx.authenticator, CovesAuthenticator)
    assert isinstance(ctx.didweb, HostedByQueue)
    specs = {spec.name: spec for spec in capability_children(ctx)}
    didweb = specs["didweb"]
    assert not didweb.critical
    assert didweb.details is not None and didweb.details()["queued"] == 0
    handles = specs["handles"]
    assert not handles.critical
    # test_settings() turns the consumer and the PDS probe off: they are not started.
    assert list(specs) == ["didweb", "handles", "ops"]
