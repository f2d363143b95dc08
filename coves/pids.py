"""Whether a process id names a live process on this host.

Shared by the supervisor's housekeeping (heartbeat rows of processes that
are gone) and the metrics directory cleanup (files of a killed run).
"""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
