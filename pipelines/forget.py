"""`zoho-deleted forget`: erase what the warehouse holds of records a person asked to have
erased, dry run first.

With `yes`, holding the pipeline's lock: a tombstone per record goes to `erasures` (loaded with
dlt, merged on org, module and id, so it lands on any destination); then, in one transaction per
dataset (the dataset and dlt's staging copy of it), SQL through the pipeline's own client blanks
every column of the records' `deleted_records` and `recycle_bin` rows but their keys, user ids
and times (`records.ERASED_KEEPS`), and deletes their related records, their rows set aside in
`rejected_records` and their rows in every `values_*` table, with those tables' child rows.
Last, the analyst file is published again, and the files dlt keeps of loaded packages are
removed. Runs read the tombstones and blank those records' rows before they are yielded
(`Warehouse.blank_erased`), so nothing personal is stored again.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Dict, List, Optional, Sequence

import dlt

from pipelines.analyst_file import publish_analyst_file
from pipelines.errors import EXIT_OK
from pipelines.exceptions import PipelineConfigError
from pipelines.ledger import who
from pipelines.run import exclusive, finish_interrupted, load
from pipelines.sql import query_rows
from sources.zoho_crm.records import ERASED_KEEPS, module_slug
from sources.zoho_crm.related import RELATED_TABLE
from sources.zoho_crm.run_context import REJECTED_TABLE
from sources.zoho_crm.values import VALUES_PREFIX
from sources.zoho_crm.warehouse import BLANKED, ERASURES_TABLE, existing_tables

COLUMNS_SQL = """
SELECT c.table_name, c.column_name FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position
"""


@dataclass
class Step:
    """What erasing does to one table: blank `columns` of the rows `where` finds, or (no
    columns) delete them. `where` names the table `{t}`; `args` fill its %s."""

    table: str
    where: str
    args: List[Any]
    columns: Optional[List[str]] = None
    rows: int = 0  # how many rows it changes, counted before

    def describe(self) -> str:
        what = f"{', '.join(self.columns)} set to NULL" if self.columns else "deleted"
        return f"  {self.table:<28}{self.rows:>6} row(s) {what}"


def parse_ids(ids: Optional[str]) -> List[str]:
    """The ids of `--ids`, checked: none is a one-line error."""
    found = [i.strip() for i in (ids or "").split(",") if i.strip()]
    if not found:
        raise PipelineConfigError(f"--ids {ids or ''!r} names no id: give --ids ID[,ID...]")
    return list(dict.fromkeys(found))


def table_columns(client: Any) -> Dict[str, List[str]]:
    """The base tables of the client's current dataset and their columns."""
    columns: Dict[str, List[str]] = {}
    for table, column in client.execute_sql(COLUMNS_SQL, client.dataset_name) or []:
        columns.setdefault(table, []).append(column)
    return columns


def steps_for(
    columns: Dict[str, List[str]], org: str, module: str, ids: Sequence[str]
) -> List[Step]:
    """What erasing `ids` of `module` does to each table of a dataset with these `columns`.

    Rows deleted from a table take its dlt child tables' rows with them (steps of their own,
    deepest first, before their parent's).
    """
    marks = ", ".join(["%s"] * len(ids))
    steps: List[Step] = []
    for table, module_column in BLANKED.items():
        blank = [
            c
            for c in columns.get(table, [])
            if c not in ERASED_KEEPS[table] and not c.startswith("_dlt_")
        ]
        if blank:
            held = " OR ".join(f"{c} IS NOT NULL" for c in blank)
            where = f"org = %s AND {module_column} = %s AND id IN ({marks}) AND ({held})"
            steps.append(Step(table, where, [org, module, *ids], blank))
    roots: List[Step] = []
    if RELATED_TABLE in columns:
        where = f"org = %s AND ((parent_module = %s AND parent_id IN ({marks})) OR id IN ({marks}))"
        roots.append(Step(RELATED_TABLE, where, [org, module, *ids, *ids]))
    for table, names in sorted(columns.items()):
        keyed = {"org", "id"} <= set(names) and "_dlt_parent_id" not in names
        if keyed and (table == REJECTED_TABLE or table.startswith(VALUES_PREFIX)):
            roots.append(Step(table, f"org = %s AND id IN ({marks})", [org, *ids]))
    for root in roots:
        steps += _child_steps(columns, root) + [root]
    return steps


def _child_steps(columns: Dict[str, List[str]], root: Step) -> List[Step]:
    """Steps deleting the rows of `root`'s child tables (`<root>__<field>`, their own children
    `<root>__<field>__<field>`) whose parents `root` deletes; deepest first."""
    children = [
        t for t in columns if t.startswith(root.table + "__") and "_dlt_parent_id" in columns[t]
    ]
    # the rows of each table that go: its parents' `_dlt_id` among the rows that go
    selects = {root.table: f"SELECT _dlt_id FROM {{{root.table}}} WHERE {root.where}"}
    steps: List[Step] = []
    for child in sorted(children, key=lambda t: t.count("__")):
        parent = max((t for t in selects if child.startswith(t + "__")), key=len)
        where = f"_dlt_parent_id IN ({selects[parent]})"
        selects[child] = f"SELECT _dlt_id FROM {{{child}}} WHERE {where}"
        steps.append(Step(child, where, list(root.args)))
    return steps[::-1]


def _sql(client: Any, step: Step, head: str) -> str:
    """`head` (e.g. `DELETE FROM {t}`) and the step's WHERE, its tables qualified."""
    tables = {t: client.make_qualified_table_name(t) for t in _named(step)}
    return f"{head} WHERE {step.where}".format(t=tables[step.table], **tables)


def _named(step: Step) -> List[str]:
    """The tables a step names: its own and those of its WHERE's sub-queries."""
    return [step.table, *(part.split("}")[0] for part in step.where.split("{")[1:])]


def _count(client: Any, steps: List[Step]) -> None:
    for step in steps:
        (step.rows,) = client.execute_sql(_sql(client, step, "SELECT count(*) FROM {t}"),
                                          *step.args)[0]  # fmt: skip


def _apply(client: Any, steps: List[Step]) -> None:
    for step in steps:
        if step.columns:
            sets = ", ".join(f"{client.escape_column_name(c)} = NULL" for c in step.columns)
            client.execute_sql(_sql(client, step, f"UPDATE {{t}} SET {sets}"), *step.args)
        else:
            client.execute_sql(_sql(client, step, "DELETE FROM {t}"), *step.args)


def check(pipeline: dlt.Pipeline, org: str, module: Optional[str], ids: List[str]) -> None:
    """A one-line error unless `module` has captured records and holds every one of `ids`."""
    tables = existing_tables(pipeline)
    if not module:
        raise PipelineConfigError("forget needs --module: a module API name, e.g. Leads")
    held = {  # table -> how its rows name the module
        **{table: (f"{column} = %s", [module]) for table, column in BLANKED.items()},
        VALUES_PREFIX + module_slug(module): ("TRUE", []),  # the module's own values table
    }
    parts = [(table, *held[table]) for table in held if table in tables]
    if not parts:
        raise PipelineConfigError("nothing is captured yet: run `zoho-deleted run` first")

    def held_ids(where: str, *more: Any) -> set:
        union = " UNION ".join(
            f"SELECT id FROM {{ds}}.{t} WHERE org = %s AND {w} AND {where}" for t, w, _ in parts
        )
        args = [a for _, _, by_module in parts for a in [org, *by_module, *more]]
        return {str(i) for (i,) in query_rows(pipeline, union, *args)}

    found = held_ids(f"id IN ({', '.join(['%s'] * len(ids))})", *ids)
    if not found and not held_ids("TRUE"):
        raise PipelineConfigError(
            f"--module {module!r} has no captured record in org {org}: check the spelling "
            "(module API names, e.g. Leads)"
        )
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise PipelineConfigError(
            f"--ids {', '.join(unknown)}: not records of {module} in org {org} that the "
            "warehouse holds (check the ids and --module)"
        )


def forget(
    pipeline: dlt.Pipeline,
    org: str,
    module: Optional[str],
    ids_arg: Optional[str],
    yes: bool,
    say: Callable[[str], None],
) -> int:
    """The command: a dry run, or (with `yes`) the erasure; returns the exit code."""
    ids = parse_ids(ids_arg)
    check(pipeline, org, module, ids)
    assert module is not None  # checked
    if not yes:
        with pipeline.sql_client() as client:
            steps = steps_for(table_columns(client), org, module, ids)
            _count(client, steps)
        say(f"Would erase {len(ids)} record(s) of {module} in org {org}:")
        _say_steps(steps, say)
        say("Nothing was changed: run the same command with --yes to erase them.")
        return EXIT_OK
    with exclusive(pipeline):
        finish_interrupted(pipeline)  # what an interrupted run extracted is scrubbed too
        _record_erasures(pipeline, org, module, ids)
        steps = _erase(pipeline, org, module, ids)
        published = publish_analyst_file(pipeline)
        _drop_loaded_files(pipeline)
    say(f"Erased {len(ids)} record(s) of {module} in org {org}:")
    _say_steps(steps, say)
    say(
        f"Tombstones in table {ERASURES_TABLE}: later runs store nothing personal of them "
        "(their ids and deletion times stay)."
    )
    if published:
        say(f"Analyst file {published.path} published again without them.")
    return EXIT_OK


def _say_steps(steps: List[Step], say: Callable[[str], None]) -> None:
    changed = [s for s in steps if s.rows]
    for step in changed:
        say(step.describe())
    if not changed:
        say("  nothing personal of them is left in any table (erased before?)")


def _erase(pipeline: dlt.Pipeline, org: str, module: str, ids: List[str]) -> List[Step]:
    """Scrub the dataset, then dlt's staging copy of it (its tables keep the rows of each
    table's last load); returns the dataset's steps, counted."""
    with pipeline.sql_client() as client:
        steps = steps_for(table_columns(client), org, module, ids)
        with client.begin_transaction():
            _count(client, steps)
            _apply(client, steps)
        with client.with_staging_dataset():
            staged = steps_for(table_columns(client), org, module, ids)
            if staged:
                with client.begin_transaction():
                    _apply(client, staged)
    return steps


def _drop_loaded_files(pipeline: dlt.Pipeline) -> None:
    """Remove the files of loaded packages that dlt keeps in the pipeline's folder (unless
    `load.delete_completed_jobs` is set): they hold the rows as loaded, erased ones too. The
    same files that setting removes; nothing reads them again."""
    for load_id in pipeline.list_completed_load_packages():
        for job in pipeline.get_load_package_info(load_id).jobs.get("completed_jobs", []):
            with suppress(FileNotFoundError):
                os.remove(job.file_path)


def _record_erasures(pipeline: dlt.Pipeline, org: str, module: str, ids: List[str]) -> None:
    """A tombstone per id, first; an id erased before keeps its first tombstone."""
    marks = ", ".join(["%s"] * len(ids))
    before = set()
    if ERASURES_TABLE in existing_tables(pipeline):
        sql = (
            f"SELECT id FROM {{ds}}.{ERASURES_TABLE} "
            f"WHERE org = %s AND module = %s AND id IN ({marks})"
        )
        before = {str(i) for (i,) in query_rows(pipeline, sql, org, module, *ids)}
    now, erased_by = datetime.now(UTC), who()
    rows = [
        {"org": org, "module": module, "id": i, "erased_at": now, "erased_by": erased_by}
        for i in ids
        if i not in before
    ]
    if not rows:
        return
    load(
        pipeline,
        dlt.resource(
            rows,
            name=ERASURES_TABLE,
            primary_key=("org", "module", "id"),
            write_disposition="merge",
            columns={
                "org": {"data_type": "text", "nullable": False},
                "module": {"data_type": "text", "nullable": False},
                "id": {"data_type": "text", "nullable": False},
                "erased_at": {"data_type": "timestamp"},
                "erased_by": {"data_type": "text"},
            },
        ),
    )
