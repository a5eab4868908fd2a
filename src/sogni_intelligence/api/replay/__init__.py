"""Routes of `/v1/replay/records`."""
