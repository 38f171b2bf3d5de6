"""Experience API: the FastAPI app factory."""

from handoff.api.app import create_app

__all__ = ["create_app"]
