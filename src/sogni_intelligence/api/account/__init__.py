"""`GET /v1/account/me`: the Sogni SDK calls it at start-up and drops its key on a 401."""
