"""first_leaf: the one way a failure is found inside nested exception groups."""

from __future__ import annotations

import errno

from coves.excgroups import first_leaf


def test_finds_the_first_matching_leaf_depth_first() -> None:
    wanted = OSError(errno.EADDRINUSE, "in use")
    later = OSError(errno.EACCES, "denied")
    group = BaseExceptionGroup(
        "outer",
        [ValueError("no"), BaseExceptionGroup("inner", [KeyboardInterrupt(), wanted]), later],
    )
    assert first_leaf(group, OSError) is wanted
    assert first_leaf(group, OSError, lambda e: e.errno == errno.EACCES) is later
    assert first_leaf(group, (KeyError, KeyboardInterrupt)).__class__ is KeyboardInterrupt


def test_a_bare_exception_and_no_match() -> None:
    bare = RuntimeError("x")
    assert first_leaf(bare, RuntimeError) is bare
    assert first_leaf(bare, OSError) is None
    assert first_leaf(ExceptionGroup("g", [ValueError()]), OSError) is None
    assert first_leaf(OSError(errno.ENOENT, "x"), OSError, lambda e: e.errno == 0) is None
