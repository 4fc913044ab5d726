"""The HTTP layer: the FastAPI app, the uvicorn/TLS server, tracing, metrics and logs."""
