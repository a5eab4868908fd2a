"""`/v1/creative-agent/workflows` and its templates."""
