"""The hosted tool catalog: each tool is typed arguments, a JSON schema and an executor."""
