"""The supervised runtime: the supervisor and each long-running child."""
