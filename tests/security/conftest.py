"""These tests drive the app through the test-only probe routes as well as the real ones."""

from tests.probe_routes import app, shared_probe_app

__all__ = ["app", "shared_probe_app"]
