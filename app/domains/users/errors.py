"""Problems the users domain reports."""

from __future__ import annotations

from app.errors import ProblemError


class EmailTaken(ProblemError):
    status = 409
    code = "email_taken"
    title = "Conflict"
    detail = "An account with this email address already exists."
