"""Fixtures for account and session tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pwdlib import PasswordHash


@pytest.fixture
def hashing_work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the password hashing library's hash and verify calls (the real work)."""
    calls: Counter[str] = Counter()
    for name in ("hash", "verify", "verify_and_update"):
        original = getattr(PasswordHash, name)

        def counted(self: PasswordHash, *args: Any, _name: str = name, _f: Any = original) -> Any:
            calls[_name] += 1
            return _f(self, *args)

        monkeypatch.setattr(PasswordHash, name, counted)
    return calls
