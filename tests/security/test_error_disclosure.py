"""Errors never hand an attacker the server's internals or the caller's own secrets back."""

from __future__ import annotations

import httpx


async def test_validation_errors_never_echo_the_submitted_values(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/probe/notes", json={"text": 12345, "secret": ["hunter2-password"]}
    )

    assert response.status_code == 422
    assert "hunter2-password" not in response.text
    assert all(set(e) == {"loc", "msg", "type"} for e in response.json()["errors"])


async def test_unhandled_error_body_has_no_exception_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/probe/crash")

    assert response.status_code == 500
    assert "RuntimeError" not in response.text
    assert "password" not in response.text
