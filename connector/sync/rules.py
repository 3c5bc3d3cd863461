"""How domain rules plug into the sync: a `SyncRules` object installs guards on the engine through its
public methods, for the objects it names (read from the mapping, never assumed).

- a push guard (`connector.sync.push.PushGuard`) looks at one local row about to be sent and may hold
  fields back, put refused values back to the base, or park the record;
- a remote guard (`connector.sync.apply.RemoteGuard`) looks at one record arriving from Salesforce and
  may refuse field values, which are then put back in Salesforce to the agreed base.

A guard decides; it never writes to the database or to Salesforce itself (the engine does, and logs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from connector.sync.apply import RemoteGuard
from connector.sync.push import PushDecision, PushGuard

if TYPE_CHECKING:
    from connector.sync.engine import SyncEngine

__all__ = ["PushDecision", "PushGuard", "RemoteGuard", "SyncRules"]


@runtime_checkable
class SyncRules(Protocol):
    def install(self, engine: SyncEngine) -> None:
        """Add this plug-in's guards with `engine.add_push_guard` / `engine.add_remote_guard`."""
