"""End-to-end tests: real ASGI server processes, real sockets, a real browser."""
