"""A living local instance for newcomers: ``scripts/demo`` (see README, "Try it").

Bluesky's reference PDS and a PLC directory on loopback (the pinned ones the
tests run), Coves reading that PDS's firehose, and seeded content written to
the accounts' own repositories, as a real network would carry it.
"""
