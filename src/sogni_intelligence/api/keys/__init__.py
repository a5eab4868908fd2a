"""Admin routes of `/v1/keys`."""
