"""Problems the posts domain reports."""

from __future__ import annotations

from app.errors import ProblemError


class PostNotFound(ProblemError):
    status = 404
    code = "post_not_found"
    title = "Not Found"
    detail = "No post with this id is visible to you."


class NotPostOwner(ProblemError):
    status = 403
    code = "not_post_owner"
    title = "Forbidden"
    detail = "Only the author of a post can change or delete it."
