from __future__ import annotations

import pytest

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.metrics import Metrics
from tests.support.events import Stream

INSTANCE_DID = "did:web:coves.test"


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def indexer(db: Database, metrics: Metrics) -> Indexer:
    return Indexer(db, instance_did=INSTANCE_DID, metrics=metrics)


@pytest.fixture
def stream() -> Stream:
    return Stream()
