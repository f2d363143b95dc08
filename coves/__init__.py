"""Coves: the AppView for community topic aggregation on the AT Protocol."""

__version__ = "0.1.0"
