"""Query parameters several routes share, said once so the OpenAPI states them alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

SITE_PATTERN = r"^[a-z0-9-]{1,32}$"

# A site's id (the contract's `site`), to show only that site; all sites the caller sees if absent.
SiteFilter = Annotated[str | None, Query(pattern=SITE_PATTERN)]
# How many rows a list returns at most.
Limit = Annotated[int, Query(ge=1, le=5000)]
