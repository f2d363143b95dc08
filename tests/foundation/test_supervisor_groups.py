"""Children of one group (the API worker processes) are stopped together, not in turn."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from nurseries.supervisor import ChildSpec, open_supervisor


class SlowToStop:
    """Takes ``drain`` seconds to finish once asked to stop; records when it did."""

    def __init__(self, name: str, drain: float, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.drain = drain
        self.log = log
        self._stop = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[Any]) -> None:
        self._stop = trio.Event()
        task_status.started()
        await self._stop.wait()
        await trio.sleep(self.drain)
        self.log.append((self.name, trio.current_time()))

    def request_stop(self) -> None:
        self._stop.set()

    def spec(self, group: str | None) -> ChildSpec:
        return ChildSpec(self.name, self.run, request_stop=self.request_stop, grace=10, group=group)


async def test_a_group_drains_at_once_and_the_rest_in_reverse_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[str, float]] = []
    async with open_supervisor() as sup:
        await sup.start(SlowToStop("ingest", 1.0, log).spec(None))
        for i in range(3):
            await sup.start(SlowToStop(f"api-{i}", 2.0, log).spec("api"))
        await sup.start(SlowToStop("heartbeat", 0.5, log).spec(None))
        started = trio.current_time()
    stopped = {name: at - started for name, at in log}
    assert stopped["heartbeat"] == 0.5
    # The three workers drained side by side: 2 s, not 6 s.
    assert {stopped[f"api-{i}"] for i in range(3)} == {2.5}
    assert stopped["ingest"] == 3.5
    assert [name for name, _ in log][-1] == "ingest"
