"""A correct record history: restores inferred only when certain, every deletion its own event."""

from __future__ import annotations

from datetime import timedelta

from conftest import NOW, delete, query, run_once

DS = "zoho_crm_deleted"
SECOND_PAGE = r"page_token="  # the listing's second page (Zoho hands out a token for it)


def test_entries_shifted_past_the_listing_by_purges_are_not_restored(org, server, pipeline):
    for n in range(450):
        delete(org, "Leads", f"L{n:04d}", NOW - timedelta(days=3, minutes=450 - n))
    run_once(server, pipeline)
    org.restore("Leads", "L0300")  # one real restore in the same pass

    # Zoho empties the bin's 5 oldest entries while the pass pages through it, oldest first:
    # the entries after them move up a page, and 5 that page 1 did not reach are never listed.
    server.faults.add(r"/settings/recycle_bin$", "purge-oldest", count=5, query=SECOND_PAGE)
    run_once(server, pipeline, reconcile=True)

    assert server.calls["recycle_bin"] >= 3  # the listing, then the unlisted asked for by id
    restored = query(pipeline, f"SELECT id FROM {DS}.deleted_records WHERE restored_at IS NOT NULL")
    assert restored == [("L0300",)]
    kinds = dict(query(pipeline, f"SELECT type, count(*) FROM {DS}.deleted_records GROUP BY 1"))
    assert kinds == {"recycle": 445, "permanent": 5}  # L0300 (restored) among the 445
    events = query(pipeline, f"SELECT id FROM {DS}.deletion_events WHERE event = 'restored'")
    assert events == [("L0300",)]


def test_a_record_deleted_restored_and_deleted_again_has_both_deletions(org, server, pipeline):
    first_time = NOW - timedelta(days=3)
    delete(org, "Deals", "D1", first_time)
    delete(org, "Deals", "D2", NOW - timedelta(days=3))
    run_once(server, pipeline)
    org.restore("Deals", "D1")
    run_once(server, pipeline, reconcile=True)
    second_time = NOW - timedelta(minutes=5)
    delete(org, "Deals", "D1", second_time)  # deleted again

    run_once(server, pipeline)

    row = query(
        pipeline,
        f"SELECT deleted_time, restored_at, type FROM {DS}.deleted_records WHERE id = 'D1'",
    )
    assert row == [(second_time, None, "recycle")]  # the latest deletion, not restored
    events = query(
        pipeline,
        f"SELECT event, event_time FROM {DS}.deletion_events WHERE id = 'D1' "
        "ORDER BY observed_at, event",
    )
    assert [e for e, _ in events] == ["binned", "restored", "binned"]
    assert events[0][1] == first_time and events[2][1] == second_time
    days = query(
        pipeline,
        f"SELECT day, sum(deletions) FROM {DS}.deletions_daily WHERE module = 'Deals' "
        "GROUP BY 1 ORDER BY 1",
    )
    assert days == [(first_time.date(), 2), (second_time.date(), 1)]  # D1 twice, D2 once

    run_once(server, pipeline, reconcile=True)  # again: nothing repeated, nothing restored
    assert query(pipeline, f"SELECT count(*) FROM {DS}.deletion_events WHERE id = 'D1'") == [(3,)]
    assert query(pipeline, f"SELECT restored_at FROM {DS}.deleted_records WHERE id = 'D1'") == [
        (None,)
    ]
