"""`POST /v1/creative-agent/tools/execute`: run one composition tool and return its result."""
