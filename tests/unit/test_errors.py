"""Problem detail helpers."""

from __future__ import annotations

import pytest

from app.errors import (
    BadRequest,
    Problem,
    ProblemError,
    error_code_for,
    problem_responses,
    status_title,
)


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "bad_request"), (404, "not_found"), (405, "method_not_allowed"), (599, "http_error")],
)
def test_error_code_for_a_bare_status(status: int, code: str) -> None:
    assert error_code_for(status) == code


def test_codes_do_not_follow_python_s_changing_phrases() -> None:
    # Python 3.13 renamed these phrases; the codes clients match on must not move with it.
    assert error_code_for(413) == "content_too_large"
    assert error_code_for(422) == "unprocessable_content"
    assert status_title(422) == "Unprocessable Content"


def test_every_standard_status_has_a_snake_case_code() -> None:
    codes = [error_code_for(status) for status in range(400, 600)]

    assert all(code.replace("_", "").isalnum() and code == code.lower() for code in codes)


class _Gone(ProblemError):
    status = 410
    code = "gone_for_good"
    title = "Gone"
    detail = "It was here once."


def test_problem_responses_document_each_status_once() -> None:
    responses = problem_responses(BadRequest, _Gone)

    assert responses == {
        400: {
            "model": Problem,
            "description": "`bad_request`: The request could not be understood.",
        },
        410: {"model": Problem, "description": "`gone_for_good`: It was here once."},
    }


def test_problems_sharing_a_status_share_one_entry() -> None:
    class _Other(BadRequest):
        code = "other"
        detail = "Another reason."

    (entry,) = problem_responses(BadRequest, _Other).values()

    assert entry["description"] == (
        "`bad_request`: The request could not be understood.; `other`: Another reason."
    )


def test_a_problem_keeps_its_class_detail_unless_given_one() -> None:
    assert str(_Gone()) == "It was here once."
    assert _Gone("Removed yesterday.").detail == "Removed yesterday."
