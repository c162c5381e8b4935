"""Pass bookkeeping (`sources.zoho_crm.passes`): the high-water mark moves only once a pass is
read to its end, never past an entry set aside, and an item's pages count only once handed on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Dict, List

import pyarrow as pa

from sources.zoho_crm.passes import ITEM_ROWS, Batch, ListPass

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FIRST = {"list": {"type": "all", "per_page": 200, "page": 1}}
SCHEMA = pa.schema([("id", pa.string())])


def entry(rid: str, minutes: int) -> Dict[str, Any]:
    return {"id": rid, "deleted_time": (T0 + timedelta(minutes=minutes)).isoformat()}


def test_a_first_pass_starts_from_the_first_queries_with_no_mark():
    listing = ListPass({}, FIRST)
    assert listing.streams == FIRST
    assert listing.since is None and listing.held is None and not listing.ever_completed


def test_a_complete_pass_moves_the_mark_to_the_newest_entry_it_read():
    state: Dict[str, Any] = {}
    listing = ListPass(state, FIRST)
    listing.advance("list", [entry("a", 5), entry("b", 9), entry("c", 1)], None)
    assert listing.save() is True
    assert state == {"completed": True, "since": (T0 + timedelta(minutes=9)).isoformat()}
    assert ListPass(state, FIRST).since == T0 + timedelta(minutes=9)


def test_an_unfinished_pass_keeps_its_mark_and_resumes_from_its_next_page():
    state: Dict[str, Any] = {"since": T0.isoformat()}
    listing = ListPass(state, FIRST)
    following = {"type": "all", "per_page": 200, "page_token": "tok"}
    listing.advance("list", [entry("a", 30)], following)
    assert listing.save() is False
    assert state["since"] == T0.isoformat()  # the mark waits for the end of the pass
    assert state["pass"]["streams"] == {"list": following}

    resumed = ListPass(state, FIRST)  # the next package, or the next run after a kill
    assert resumed.streams == {"list": following}
    resumed.advance("list", [entry("b", 10)], None)
    assert resumed.save() is True
    assert "pass" not in state
    assert state["since"] == (T0 + timedelta(minutes=30)).isoformat()  # the newest of the pass


def test_the_mark_never_moves_back():
    state: Dict[str, Any] = {"since": (T0 + timedelta(hours=1)).isoformat()}
    listing = ListPass(state, FIRST)
    listing.advance("list", [entry("a", 5)], None)
    listing.save()
    assert state["since"] == (T0 + timedelta(hours=1)).isoformat()


def test_an_entry_set_aside_holds_the_mark_a_second_before_the_next_well_formed_one():
    state: Dict[str, Any] = {}
    listing = ListPass(state, FIRST)
    page = [entry("new", 50), {"id": "bad", "deleted_time": "yesterday"}, entry("old", 20)]
    listing.advance("list", page, None, rejected={1})
    assert listing.save() is True
    hold = (T0 + timedelta(minutes=20) - timedelta(seconds=1)).isoformat()
    assert state["since"] == hold and listing.held == hold


def test_an_entry_set_aside_with_nothing_below_it_leaves_the_mark_where_it_was():
    state: Dict[str, Any] = {"since": T0.isoformat()}
    listing = ListPass(state, FIRST)
    listing.advance("list", [entry("new", 50), {"id": "bad"}], None, rejected={1})
    listing.save()
    assert state["since"] == T0.isoformat() and state["held"] == T0.isoformat()


def test_an_entry_set_aside_on_one_page_is_held_by_the_first_entry_of_the_next():
    state: Dict[str, Any] = {}
    listing = ListPass(state, FIRST)
    listing.advance("list", [entry("new", 50), {"id": "bad"}], {"page": 2}, rejected={1})
    listing.save()
    listing = ListPass(state, FIRST)
    listing.advance("list", [entry("old", 10)], None)
    listing.save()
    assert state["since"] == (T0 + timedelta(minutes=10) - timedelta(seconds=1)).isoformat()


def test_dlts_incremental_cursor_of_an_earlier_version_becomes_the_mark_in_utc():
    state = {"incremental": {"deleted_time": {"last_value": "2026-11-30T17:30:00+05:30"}}}
    assert ListPass(state, FIRST).since == T0


def test_a_list_read_in_parts_takes_the_newest_mark_of_its_parts():
    parts = []
    for minutes in (5, 40, 15):
        part_state: Dict[str, Any] = {}
        part = ListPass(part_state, FIRST)
        part.advance("list", [entry(f"m{minutes}", minutes)], None)
        part.save()
        parts.append(part)
    state: Dict[str, Any] = {}
    ListPass(state, FIRST).adopt(parts)
    assert state == {"since": (T0 + timedelta(minutes=40)).isoformat(), "completed": True}


def test_a_part_holding_an_entry_with_nothing_below_it_leaves_the_list_without_a_mark():
    held: Dict[str, Any] = {}
    part = ListPass(held, FIRST)
    part.advance("list", [{"id": "bad"}], None, rejected={0})
    part.save()
    fine: Dict[str, Any] = {}
    other = ListPass(fine, FIRST)
    other.advance("list", [entry("a", 40)], None)
    other.save()
    state: Dict[str, Any] = {}
    listing = ListPass(state, FIRST)
    listing.adopt([part, other])
    assert listing.since is None and listing.ever_completed


def pages_of(sizes: List[int]):
    for n, size in enumerate(sizes):
        rows = [entry(f"p{n}r{k}", -n) for k in range(size)]
        yield "list", rows, ({"page": n + 2} if n < len(sizes) - 1 else None)


def ids_of(page: List[Dict[str, Any]]):
    """A page's rows (each entry's id) and no entry set aside."""
    return [{"id": r["id"]} for r in page], set()


def test_batch_gathers_pages_into_items_and_notes_a_page_only_once_its_item_is_handed_on():
    state: Dict[str, Any] = {}
    listing = ListPass(state, FIRST)
    items = Batch(listing, SCHEMA).items(pages_of([ITEM_ROWS // 2, ITEM_ROWS // 2, 10]), ids_of)
    first = next(items)
    assert first.num_rows == ITEM_ROWS
    assert listing.streams == FIRST  # not handed on yet: a kill here reads both pages again
    second = next(items)
    assert listing.streams == {"list": {"page": 3}}  # the first item's pages are noted
    assert second.num_rows == 10
    assert list(items) == []
    assert listing.streams == {"list": None} and listing.save()


def test_batch_completes_an_item_once_and_yields_nothing_for_a_page_without_rows():
    calls: List[int] = []
    listing = ListPass({}, FIRST)
    batch = Batch(listing, SCHEMA, lambda rows: calls.append(len(rows)))
    tables = list(batch.items(pages_of([3, 0]), ids_of))
    assert [t.num_rows for t in tables] == [3] and calls == [3]
    assert listing.streams == {"list": None}
