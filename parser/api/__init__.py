"""The parser's staff API."""
