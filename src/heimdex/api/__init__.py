"""The HTTP API (FastAPI) that also serves the web app."""

from heimdex.api.app import create_app

__all__ = ["create_app"]
