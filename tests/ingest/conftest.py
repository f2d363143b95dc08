from __future__ import annotations

import pytest

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from tests.support.events import Stream

INSTANCE_DID = "did:web:coves.test"


@pytest.fixture(scope="session")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def indexer(db: Database, metrics: Metrics, lexicons: LexiconRegistry) -> Indexer:
    """The indexer as production builds it: validating against the real lexicons."""
    return Indexer(db, instance_did=INSTANCE_DID, metrics=metrics, validator=lexicons)


@pytest.fixture
def stream() -> Stream:
    return Stream()
