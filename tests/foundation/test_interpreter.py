"""Interpreter tuning applied by the serve path."""

from __future__ import annotations

import sys

from coves.config import load_settings
from coves.interpreter import apply_switch_interval


def test_switch_interval_is_set_from_the_setting_and_zero_leaves_it() -> None:
    original = sys.getswitchinterval()
    try:
        settings = load_settings({"SWITCH_INTERVAL_SECONDS": "0.0005"}, dotenv=None)
        assert settings.switch_interval_seconds == 0.0005
        assert apply_switch_interval(settings.switch_interval_seconds) == original
        assert abs(sys.getswitchinterval() - 0.0005) < 1e-9
        sys.setswitchinterval(original)
        assert apply_switch_interval(load_settings({}, dotenv=None).switch_interval_seconds) is None
        assert sys.getswitchinterval() == original
    finally:
        sys.setswitchinterval(original)
