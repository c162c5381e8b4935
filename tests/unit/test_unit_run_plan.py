"""What the runner may use of a run (`sources.zoho_crm.run_context.ZohoRun`): the order of a
run's load packages, planned from what each package before did, and the run's figures."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Iterator, List

import pytest

from sources.zoho_crm.run_context import ZohoRun
from sources.zoho_crm.values import ValuesRun

# a first source's resources, in the order `zoho_crm` builds them (`values_*` only with
# record values), and those of its first package
LISTS = ["deleted_records_leads", "deletion_events_leads", "recycle_bin", "reconcile"]
RESOURCES = [
    *LISTS,
    "modules_memo",
    "record_values_memo",
    "values_leads",
    "values_deals",
    "related_lists_check",
    "related_backlog",
    "deleted_related_records",
]
FIRST = [*LISTS, "modules_memo", "record_values_memo", "related_lists_check"]


def client(calls: int = 0) -> SimpleNamespace:
    """The part of a `ZohoClient` a run reads."""
    return SimpleNamespace(
        calls=Counter(deleted=calls), last_module=None, max_concurrency=7, credits_remaining=None
    )


def values_run(*modules: str) -> ValuesRun:
    return ValuesRun(list(modules), False, list(modules), {}, 100, 0)


def a_run(values: ValuesRun | None = None, related: bool = False) -> ZohoRun:
    run = ZohoRun()
    run.client = client()
    run.values = values
    run.related = {"Leads": {"Notes": ["Note_Title"]}} if related else {}
    return run


def plan_of(run: ZohoRun) -> Iterator[List[str]]:
    """The plan of `run` from its first source's resources (`values_*` when it reads values)."""
    if run.values is None:
        return run.packages([n for n in RESOURCES if not n.startswith("values_")])
    return run.packages(RESOURCES)


def test_a_run_with_nothing_left_after_its_first_package_is_one_package():
    run = a_run()
    assert list(plan_of(run)) == [FIRST]


def test_record_values_and_related_records_are_never_in_the_first_package():
    run = a_run(values_run("Leads", "Deals"), related=True)
    plan = plan_of(run)
    assert next(plan) == FIRST


def test_unfinished_passes_go_on_with_their_events_until_none_is_left():
    run = a_run()
    plan = plan_of(run)
    assert next(plan) == FIRST
    run.unfinished("recycle_bin")
    run.unfinished("deleted_records_leads")
    assert next(plan) == ["deleted_records_leads", "recycle_bin", "deletion_events_leads"]
    assert run.unfinished_passes == set()  # each package notes its own
    run.unfinished("recycle_bin")
    assert next(plan) == ["recycle_bin"]
    assert next(plan, None) is None


def test_record_values_come_after_the_passes_a_package_at_a_time_while_unfinished():
    values = values_run("Leads", "Deals")
    run = a_run(values)
    plan = plan_of(run)
    next(plan)
    run.unfinished("recycle_bin")
    assert next(plan) == ["recycle_bin"]
    assert next(plan) == ["values_leads", "values_deals"]
    values.unfinished.update({"values_leads"})
    assert next(plan) == ["values_leads"]
    assert values.unfinished == set()
    assert next(plan, None) is None


def test_related_records_go_on_while_their_packages_make_calls():
    run = a_run(related=True)
    plan = plan_of(run)
    next(plan)
    assert next(plan) == ["deleted_related_records"]
    run.client.calls["related"] += 3
    assert next(plan) == ["deleted_related_records"]
    assert next(plan, None) is None  # that package made no call: nothing left it may ask for


def test_related_records_stop_once_their_budget_is_spent():
    run = a_run(related=True)
    run.related_calls_left = 1  # related_calls_per_run
    plan = plan_of(run)
    assert next(plan) == FIRST and next(plan) == ["deleted_related_records"]
    assert run.take_related_call(credits_reserve=0)
    run.client.calls["related"] += 1
    assert not run.take_related_call(credits_reserve=0)
    assert run.related_stop == "this run's related_calls_per_run budget is spent"
    assert next(plan, None) is None


def test_related_records_stopped_before_they_start_make_no_package():
    run = a_run(related=True)
    run.stop_related("Zoho's daily API credits are spent (LIMIT_REACHED)")
    assert list(plan_of(run)) == [FIRST]


def test_after_record_values_come_the_related_records():
    run = a_run(values_run("Leads", "Deals"), related=True)
    plan = plan_of(run)
    assert next(plan) == FIRST
    assert next(plan) == ["values_leads", "values_deals"]
    assert next(plan) == ["deleted_related_records"]


def test_figures_before_the_source_is_built():
    run = ZohoRun()
    assert run.calls == Counter() and run.calls_made == 0 and run.last_module is None
    assert run.values_modules is None and run.values_stop is None
    assert run.related_lists() == [] and run.rejected_rows() == []
    with pytest.raises(AssertionError, match="the source is built"):
        run.max_concurrency  # noqa: B018


def test_figures_of_a_run_under_way():
    run = a_run(values_run("Deals"), related=True)
    run.client.calls.update(deleted=2, related=3)
    run.client.last_module = "Deals"
    run.values.stop = "this run's values_calls_per_run budget is spent"
    assert run.calls_made == 5 and run.last_module == "Deals" and run.max_concurrency == 7
    assert run.values_modules == ["Deals"]
    assert run.values_stop == "this run's values_calls_per_run budget is spent"
    assert run.related_lists() == [("Leads", "Notes")]
