"""`python -m app`: what it sets up for the process before it serves."""

from __future__ import annotations

import ctypes

import pytest

from app.__main__ import return_freed_blocks_to_the_system


def test_glibc_keeps_unmapping_large_freed_blocks() -> None:
    assert return_freed_blocks_to_the_system()  # this machine's C library is glibc


def test_another_c_library_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str | None) -> ctypes.CDLL:
        raise OSError(f"cannot load {name}")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert not return_freed_blocks_to_the_system()
