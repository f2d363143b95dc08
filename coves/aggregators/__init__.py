"""Aggregators: automated accounts that post links into communities that
authorised them (registration, API keys, the queries over their indexed
service and authorization records). Posting itself is coves.posting."""
