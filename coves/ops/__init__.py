"""Operator tooling: the commands and facts an operator runs Coves with."""
