"""The web console: static pages served at `/console` that talk to the public `/v1` API."""
