from __future__ import annotations

import pytest

from coves.lexicon import LexiconRegistry


@pytest.fixture(scope="session")
def registry() -> LexiconRegistry:
    return LexiconRegistry.load()
