"""The dry run of `restore --recreate` (`pipelines.recreate.describe_recreate`) counts in words
that agree with its numbers: one record is a record."""

from __future__ import annotations

from pipelines.recreate import Candidate, RecreatePlan, describe_recreate
from pipelines.recreate_fields import field_plan
from pipelines.words import counted


def plan_of(*names: str, interrupted: int = 0) -> RecreatePlan:
    plan = RecreatePlan()
    for number, name in enumerate(names):
        plan.send["Leads"].append(Candidate("Leads", str(number), name, {"Last_Name": name}))
    plan.fields["Leads"] = field_plan(None, [c.values for c in plan.send["Leads"]])
    plan.interrupted = [{"old_id": f"s{n}"} for n in range(interrupted)]
    return plan


def test_one_record_is_a_record():
    lines = describe_recreate(plan_of("Ann", interrupted=1), [])
    assert lines[0].startswith("Would recreate 1 purged record from its last captured values")
    assert "1 was sent by an interrupted command: --yes looks in Zoho first" in "\n".join(lines)


def test_several_are_records():
    lines = describe_recreate(plan_of("Ann", "Bo", interrupted=2), [])
    assert lines[0].startswith("Would recreate 2 purged records from their last captured values")
    assert "2 were sent by an interrupted command" in "\n".join(lines)


def test_counted_agrees_with_zero_one_and_many():
    assert counted(0, "record", "records") == "0 records"
    assert counted(1, "record", "records") == "1 record"
    assert counted(12, "record", "records") == "12 records"
