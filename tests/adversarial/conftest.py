"""Helpers of the adversarial layer: every bad input and injected fault of issue #15 kept as a test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No COSELL_* variable, .env or config file of the machine leaks into a CLI test."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("COSELL_")]:
        monkeypatch.delenv(key)
    return tmp_path
