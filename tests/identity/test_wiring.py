from __future__ import annotations

from typing import Any, cast

from coves.auth.authenticator import CovesAuthenticator
from coves.config import test_settings
from coves.db import Database
from coves.identity import IdentityResolver
from coves.identity.hosted_by import HostedByQueue
from coves.metrics import Metrics
from nurseries.didweb import didweb_child
from nurseries.handles import handles_child
from nurseries.main import Runtime, build_context, capability_children


def test_build_context_wires_identity_auth_and_the_didweb_queue() -> None:
    runtime = Runtime(test_settings(), cast(Any, None), Metrics(), db=Database("postgresql:///x"))
    runtime.ctx = build_context(runtime)
    assert isinstance(runtime.ctx.identity, IdentityResolver)
    assert isinstance(runtime.ctx.authenticator, CovesAuthenticator)
    assert isinstance(runtime.ctx.didweb, HostedByQueue)
    assert didweb_child in capability_children()
    spec = didweb_child(runtime)
    assert spec is not None and spec.name == "didweb" and not spec.critical
    assert spec.details is not None and spec.details()["queued"] == 0
    assert handles_child in capability_children()
    handles = handles_child(runtime)
    assert handles is not None and handles.name == "handles" and not handles.critical
