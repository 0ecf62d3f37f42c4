"""Processes: the Temporal worker, the client factory, the CLI and the local dev stack."""
