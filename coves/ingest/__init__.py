"""Jetstream ingestion: from websocket frames to indexed rows."""
