"""LLM engines (embedded llama.cpp, OpenAI-compatible upstream), model registry, grammars."""
