"""LLM backends of the parser: an OpenAI-compatible API and the solve-upstream pool."""
