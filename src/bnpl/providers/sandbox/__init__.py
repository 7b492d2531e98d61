"""Sandbox simulators of the third-party providers, served over HTTP."""

from bnpl.providers.sandbox.app import create_sandbox_app, standalone_app

__all__ = ["create_sandbox_app", "standalone_app"]
