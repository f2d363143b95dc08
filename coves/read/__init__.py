"""The read side: every query endpoint follows one pipeline (see docs/reading.md)."""
