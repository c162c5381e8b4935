"""Zoho's paging: `page` and `per_page` up to the 2000th record, `page_token` beyond it, and
the `info` block every listing answers with."""

from __future__ import annotations

import base64
from typing import Any, Dict, Optional, Sequence, Tuple

from zoho_standin.errors import ApiError, invalid_data

MAX_PER_PAGE = 200
MAX_DISCRETE_RECORDS = 2000  # `page` reaches only this far; beyond it only `page_token` does


def page(
    items: Sequence[Any], query: Dict[str, str], limit: Optional[int] = None
) -> Tuple[Sequence[Any], Dict[str, Any]]:
    """Slice `items` by `page`/`per_page` or `page_token`, Zoho style: the chunk and `info`.
    `limit`: the most records one listing reaches (Get Records: 100,000); the page that ends
    there still says `more_records`, and a token past it is refused."""
    try:
        per_page = int(query.get("per_page", MAX_PER_PAGE))
        number = int(query.get("page", 1))
    except ValueError:
        raise invalid_data("page and per_page take positive integers") from None
    if not 1 <= per_page <= MAX_PER_PAGE or number < 1:
        raise invalid_data(f"per_page must be 1..{MAX_PER_PAGE}, page positive")
    token = query.get("page_token")
    if token:
        if "page" in query:
            raise invalid_data("page_token cannot be combined with page")
        start = _token_start(token)
    else:
        start = (number - 1) * per_page
        if start + per_page > MAX_DISCRETE_RECORDS:
            raise ApiError(
                400,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "cannot fetch more than 2000 records with page; use page_token",
            )
    end = start + per_page if limit is None else min(start + per_page, limit)
    if limit is not None and start >= limit:
        raise ApiError(
            400, "LIMIT_REACHED", f"a listing reaches at most {limit} records; narrow it"
        )
    chunk = items[start:end]
    more = start + per_page < len(items)
    info = {
        "per_page": per_page,
        "count": len(chunk),
        "page": start // per_page + 1,
        "more_records": more,
        "next_page_token": _token(start + per_page) if more else None,
        "previous_page_token": None,
        "page_token_expiry": None,
    }
    return chunk, info


def _token(start: int) -> str:
    return base64.urlsafe_b64encode(f"tok:{start}".encode()).decode()


def _token_start(token: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1])
    except (ValueError, IndexError):
        raise invalid_data("invalid page_token") from None
