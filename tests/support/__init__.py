"""Test doubles and helpers shared by the test suite (never imported by the product)."""
