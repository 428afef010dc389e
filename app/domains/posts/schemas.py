"""Request and response bodies of the posts endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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


class PostUpdate(BaseModel):
    """A partial update: only the fields sent are changed; none of them may be null."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    content: Content | None = None
    published: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


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
    total: int = Field(description="Posts visible to the caller that match the search.")
    limit: int
    offset: int
