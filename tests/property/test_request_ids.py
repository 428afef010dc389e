"""Whatever a client sends as X-Request-ID, the response carries a safe, well-formed id."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.middleware import is_valid_request_id

# Header values as a client can send them: visible ASCII plus spaces and tabs.
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=200
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=header_values)
async def test_request_id_is_echoed_only_when_well_formed(
    client: httpx.AsyncClient, sent: str
) -> None:
    response = await client.get("/health", headers={"X-Request-ID": sent})

    returned = response.headers["x-request-id"]
    # Rules stated independently of the validator: bounded, no whitespace or controls,
    # so an id can never break or forge a log line.
    assert 1 <= len(returned) <= 128
    assert not any(c.isspace() or not c.isprintable() for c in returned)
    assert (returned == sent) is is_valid_request_id(sent)
