"""HTTP layer: FastAPI routers, auth, error shapes and SSE."""
