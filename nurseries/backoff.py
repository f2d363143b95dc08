"""Exponential backoff with jitter, on Trio's clock.

Shared by the supervisor (restart delays) and the Jetstream consumer
(reconnect delays) so both behave, and are tested, the same way.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Jitter = Literal["none", "full", "equal"]


@dataclass
class ExponentialBackoff:
    """Delay = min(cap, base * multiplier**attempt), then jittered.

    ``full`` jitter draws uniformly from [0, delay] (best for spreading many
    clients reconnecting to one server); ``equal`` from [delay/2, delay]
    (keeps a floor, used for restarts); ``none`` is deterministic.
    """

    base: float = 1.0
    cap: float = 60.0
    multiplier: float = 2.0
    jitter: Jitter = "full"
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def ceiling(self) -> float:
        """The un-jittered delay for the current attempt."""
        return min(self.cap, self.base * self.multiplier ** min(self.attempt, 64))

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        self.attempt += 1
        if self.jitter == "full":
            return self.rng.uniform(0.0, ceiling)
        if self.jitter == "equal":
            return self.rng.uniform(ceiling / 2, ceiling)
        return ceiling

    def reset(self) -> None:
        self.attempt = 0
