"""The admin HTTP API and console (FastAPI, Jinja2), its alerts, and `serve`, which runs them beside the
scheduler in one process."""

from connector.admin.api import create_app

__all__ = ["create_app"]
