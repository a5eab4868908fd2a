"""Durable chat runs: `/v1/chat/runs`."""
