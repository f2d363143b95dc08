"""Coves as an atproto OAuth client (a backend-for-frontend).

The web and mobile clients never hold the user's PDS tokens: Coves runs the
OAuth flow with the user's authorization server, keeps the DPoP-bound tokens
and the DPoP key sealed in PostgreSQL, and gives the client an opaque sealed
session token instead. Writes the user makes through Coves are then signed
with keys that never leave this server. See docs/oauth.md.
"""
