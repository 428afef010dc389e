"""The redirect allowlist's building blocks: origins in normal form, and query parameters
added to a frontend URL."""

from __future__ import annotations

import pytest

from app.domains.auth.oauth.redirects import origin, with_query


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM:443/path?q=1#f", "https://app.example.com"),
        ("http://localhost:5173/", "http://localhost:5173"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        ("http://example.com:80", "http://example.com"),
        ("ftp://example.com", None),
        ("https://user@example.com", None),
        ("https://:pw@example.com", None),
        ("https://example.com:0x50", None),
    ],
)
def test_origin_is_the_normal_form_of_an_absolute_http_url(url: str, expected: str | None) -> None:
    assert origin(url) == expected


def test_with_query_keeps_other_parameters_and_replaces_its_own() -> None:
    url = "https://app.example.com/cb?tab=2&code=old#top"

    assert with_query(url, code="new") == "https://app.example.com/cb?tab=2&code=new#top"
