"""Request and response bodies of the posts endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.domains.posts.models import CONTENT_MAX_LENGTH, TITLE_MAX_LENGTH

# PostgreSQL text cannot hold NUL; refusing it here keeps such input a 422, not a 500.
NO_NUL = r"^[^\x00]*$"
Title = Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX_LENGTH, pattern=NO_NUL)]
Content = Annotated[
    str, StringConstraints(min_length=1, max_length=CONTENT_MAX_LENGTH, pattern=NO_NUL)
]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content
    published: bool = True


def _documented_without_null(schema: dict[str, Any]) -> None:
    """The fields are `X | None` in Python, for "not sent"; clients may leave them out, but
    never send null, so their JSON Schema is X alone."""
    for field in schema["properties"].values():
        [sent] = [option for option in field.pop("anyOf") if option != {"type": "null"}]
        del field["default"]
        field.update(sent)


class PostUpdate(BaseModel):
    """A partial update: only the fields sent are changed; none of them may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_documented_without_null)

    title: Title | None = None
    content: Content | None = None
    published: bool | None = None

    # Runs only for fields that were sent (defaults are not validated): an explicit null is
    # refused at its own location, `["body", "title"]`.
    @field_validator("title", "content", "published")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    title: str
    content: str
    published: bool
    created_at: datetime
    updated_at: datetime
    votes: int = Field(description="How many users voted for the post.")
    voted: bool | None = Field(
        description="Whether the caller voted for the post; null for anonymous callers."
    )


class PostPage(BaseModel):
    items: list[PostRead]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="The `offset` of the next page; null when this page is the last."
    )
