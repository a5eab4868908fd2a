"""The server-side agent loop: LLM rounds with hosted tools executed here."""
