"""Middleware behaviour that a client cannot reach through a normal request."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.middleware import UnhandledErrorMiddleware, is_valid_request_id


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c", True),
        ("lb-1:abc.def_ghi", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("two words", False),
        ("forged\nlog line", False),
        ("ünïcode", False),
    ],
)
def test_request_id_shape(value: str, valid: bool) -> None:
    assert is_valid_request_id(value) is valid


async def test_an_error_after_the_response_started_is_re_raised() -> None:
    sent: list[Message] = []

    async def half_response(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("stream broke")

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = UnhandledErrorMiddleware(half_response)
    scope: Scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}

    with pytest.raises(RuntimeError, match="stream broke"):
        await middleware(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]
