"""The HTTP API: thin FastAPI routes that validate, authorize and start workflows."""
