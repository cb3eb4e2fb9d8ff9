"""The thin HTTP layer: translates requests to :mod:`engine` calls and results to JSON."""

from .app import create_app

__all__ = ["create_app"]
