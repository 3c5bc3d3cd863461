"""The admin HTTP API (FastAPI) and `serve`, which runs it beside the scheduler in one process."""

from connector.admin.api import create_app

__all__ = ["create_app"]
