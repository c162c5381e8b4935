"""Zoho's paging (`client.next_page`): `page` up to 2,000 records, `page_token` beyond, and a
page that does not say whether more follow read by its length, or refused."""

from __future__ import annotations

import pytest

from sources.zoho_crm.client import next_page

FIRST = {"type": "all", "per_page": 200, "page": 1}


def full(n: int = 200) -> list:
    return [{"id": str(k)} for k in range(n)]


def test_the_last_page_has_no_next():
    assert next_page(FIRST, {"info": {"more_records": False, "page": 1}}, 200) is None


def test_more_records_goes_on_with_the_next_page():
    following = next_page(FIRST, {"info": {"more_records": True, "page": 1}}, 200)
    assert following == {"type": "all", "per_page": 200, "page": 2}
    assert FIRST["page"] == 1  # the query given is left as it was


def test_zohos_page_number_wins_over_the_querys():
    body = {"info": {"more_records": True, "page": 4}}
    assert next_page(FIRST, body, 200)["page"] == 5


def test_a_next_page_token_replaces_page():
    body = {"info": {"more_records": True, "next_page_token": "tok2", "page": 10}}
    following = next_page({**FIRST, "page": 10}, body, 200)
    assert following == {"type": "all", "per_page": 200, "page_token": "tok2"}
    again = next_page(following, {"info": {"more_records": True, "next_page_token": "t3"}}, 200)
    assert again == {"type": "all", "per_page": 200, "page_token": "t3"}


@pytest.mark.parametrize("body", [{}, {"info": None}, {"info": {"page": 1}}, {"info": "yes"}])
def test_without_more_records_a_short_page_is_the_last(body):
    assert next_page(FIRST, body, 150) is None


def test_without_more_records_a_full_page_is_followed_where_page_reaches():
    assert next_page(FIRST, {"data": full()}, 200) == {**FIRST, "page": 2}
    assert next_page({**FIRST, "per_page": 50}, {}, 50) == {**FIRST, "per_page": 50, "page": 2}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({**FIRST, "page": 10}, "no `info` object"),  # page 11 would pass 2,000 records
        ({"type": "all", "per_page": 200, "page_token": "tok"}, "no `info` object"),
    ],
)
def test_without_more_records_a_full_page_where_page_cannot_reach_is_refused(query, words):
    with pytest.raises(ValueError, match=words):
        next_page(query, {}, 200)
    with pytest.raises(ValueError, match="no `info.more_records`"):
        next_page(query, {"info": {"count": 200}}, 200)
