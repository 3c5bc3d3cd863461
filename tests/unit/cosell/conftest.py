"""The co-sell policies, registered for one test at a time: the policy registries are process-wide and other
layers' tests expect exactly the built-in names, so the registration is undone after each test."""

from __future__ import annotations

import importlib

import pytest

import connector.sync.policies as sync_policies


@pytest.fixture
def cosell_policies(monkeypatch):
    """connector.cosell.policies, with its policies registered (again, if an earlier test's teardown removed
    them: the module is imported only once per process)."""
    saved = dict(sync_policies._REGISTRY)
    module = importlib.import_module("connector.cosell.policies")
    for policy in (module.RegistrationStatusPolicy(), module.ParticipantEditWins(), module.ParticipantDeleteWins()):
        sync_policies.register_policy(policy)
    yield module
    sync_policies._REGISTRY.clear()
    sync_policies._REGISTRY.update(saved)
