"""Sandbox-only endpoints: the platform clock and the gateway simulator's records."""
