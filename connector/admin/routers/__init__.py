"""The admin JSON API's routes, one router per resource. Each route reads through the query layer
(`connector.admin.queries`) or acts through `connector.admin.actions`; none writes SQL of its own.
The bearer check is added where the routers are included (`connector.admin.api`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from connector.admin.actions import AdminActions
from connector.admin.models import Problem
from connector.admin.queries import AdminQueries

__all__ = ["AdminContext", "MAX_ID", "context", "not_found", "conflict_responses"]

# Ids are SQL integers; a larger one is a client error (422), not a database overflow.
MAX_ID = 2**63 - 1
not_found = {404: {"model": Problem}}
conflict_responses = {409: {"model": Problem}}


@dataclass
class AdminContext:
    connector: Any
    runner: Any
    scheduler: Any
    queries: AdminQueries
    actions: AdminActions


def context(request: Request) -> AdminContext:
    return request.app.state.admin
