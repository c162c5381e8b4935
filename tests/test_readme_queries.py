"""Every SQL query in the README and docs/ runs, as an analyst opens the analyst file, and
returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ANALYST_FILE, DUCKDB_FILE, analyst, run_once

from pipelines.demo import DEMO_RECORD_VALUES, DEMO_RELATED_LISTS, change_between_runs
from zoho_standin.seed import DEMO_MODULES, seed_demo

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(language: str) -> list:
    """The code blocks in `language` of the README and docs/, each once, in reading order."""
    found = (re.findall(rf"```{language}\n(.*?)```", d.read_text(), flags=re.S) for d in DOCS)
    return list(dict.fromkeys(block for per_doc in found for block in per_doc))


QUERIES = blocks("sql")
PYTHON = blocks("python")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The demo's data, loaded twice (with a reconciliation), as the README's reader has it."""
    from pipelines.duckdb_file import duckdb_destination
    from pipelines.run import make_pipeline
    from zoho_standin import Org, StandinServer

    tmp = tmp_path_factory.mktemp("readme")
    pipeline = make_pipeline(
        destination=duckdb_destination(str(tmp / DUCKDB_FILE)),
        pipelines_dir=str(tmp / "pipelines"),
    )
    org = Org()
    seed_demo(org)
    with StandinServer(org) as server:
        args = {
            "modules": list(DEMO_MODULES),
            "related_lists": DEMO_RELATED_LISTS,
            "record_values": DEMO_RECORD_VALUES,
        }
        run_once(server, pipeline, **args)
        change_between_runs(org)
        run_once(server, pipeline, reconcile=True, **args)
    return tmp / ANALYST_FILE


def test_the_docs_have_queries():
    assert len(QUERIES) >= 9


@pytest.mark.parametrize("sql", QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_readme_query_runs_and_returns_rows(loaded, sql):
    with analyst(loaded) as db:
        rows = db.sql(sql).fetchall()
    assert rows, "the query returned nothing on the demo data"


def test_readme_python_reads_the_tables_with_dlts_dataset_api(loaded, monkeypatch, capsys):
    """The Python example (docs/tables.md), run where `zoho-deleted run` would have published
    the analyst file."""
    monkeypatch.chdir(loaded.parent)
    [example] = [block for block in PYTHON if "dlt.dataset(" in block]
    names: dict = {}
    exec(example, names)
    with analyst(loaded) as db:
        expected = db.sql(
            "SELECT module, id, display_name FROM zoho_crm_deleted.deleted_records "
            "WHERE type = 'permanent'"
        ).fetchall()
    table = names["purged"].arrow()
    rows = list(zip(*table.to_pydict().values(), strict=True))
    assert expected and sorted(rows, key=str) == sorted(expected, key=str)
    assert "pyarrow.Table" in capsys.readouterr().out
