"""The frontend's client is generated from frontend/openapi.json: it must be the API's own."""

from __future__ import annotations

import pytest

from app import cli
from tests.support import ROOT

SCHEMA = ROOT / "frontend" / "openapi.json"


def test_the_frontends_openapi_document_is_the_apis(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["openapi"]) == 0

    assert capsys.readouterr().out == SCHEMA.read_text(), (
        "frontend/openapi.json is out of date: run `make openapi`"
    )
