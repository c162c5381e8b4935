"""Modules checked against Zoho before anything loads; every module refused is a clear exit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import MODULES, NOW, api_calls, delete, run_once
from test_cli import cli

from pipelines.errors import explain

DS = "zoho_crm_deleted"


def seed(org) -> None:
    for module in MODULES[:3]:
        delete(org, module, f"{module[0]}1", NOW - timedelta(days=1))


def test_unknown_modules_are_named_with_the_valid_ones_before_errors_they_cause(
    org, server, pipeline
):
    seed(org)
    related = {"Contacts": {"Deals": ["Deal_Name"]}}  # names the module meant by "Contcts"
    with pytest.raises(Exception) as raised:
        run_once(server, pipeline, modules=["Leads", "Contcts", "Dealz"], related_lists=related)

    code, message = explain(raised.value)
    assert code == 2
    assert "'Contcts', 'Dealz' are not Zoho modules" in message
    assert "Leads, Contacts, Deals, Accounts" in message  # the valid ones (Home, Visits: not)
    assert "related_lists" not in message
    assert api_calls(server) == {"modules": 1}  # one metadata call, nothing read or loaded
    assert "deleted_records" not in pipeline.default_schema.tables


def test_every_module_refused_with_the_bin_read_is_exit_1_in_one_line(org, server, tmp_path):
    seed(org)
    assert cli(server, tmp_path, "run").returncode == 0
    server.faults.add(r"/(Leads|Contacts)/deleted$", "403-wrapped", times=None)
    server.faults.add(r"/(Deals|Accounts)/deleted$", "scope", times=None)

    result = cli(server, tmp_path, "run", "--reconcile")  # the pass that once built `IN ()`

    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (
        "Zoho refused every module, Accounts (OAUTH_SCOPE_MISMATCH), Contacts (NO_PERMISSION), "
        "Deals (OAUTH_SCOPE_MISMATCH), Leads (NO_PERMISSION)" in result.stderr
    )
    status = cli(server, tmp_path, "status")
    assert status.returncode == 1 and "could not read Accounts (OAUTH_SCOPE_MISMATCH)" in (
        status.stdout
    )


def test_every_module_and_the_bin_refused_is_exit_4(org, server, tmp_path):
    seed(org)
    server.faults.add(r"/deleted$", "403", times=None)
    server.faults.add(r"/settings/recycle_bin$", "403-wrapped-bin", times=None)

    result = cli(server, tmp_path, "run")

    assert result.returncode == 4, result.stderr
    assert result.stderr.count("\n") == 1
    assert "Zoho refused every module and the recycle bin" in result.stderr
    assert "recycle_bin (NO_PERMISSION)" in result.stderr


def test_a_refused_bin_skips_the_reconciliation_pass_not_the_run(org, server, pipeline):
    seed(org)
    run_once(server, pipeline)
    delete(org, "Leads", "L2", NOW - timedelta(minutes=5))
    server.faults.add(r"/settings/recycle_bin$", "403-wrapped-bin", times=None)

    result = run_once(server, pipeline, reconcile=True)

    assert set(result.failed_modules) == {"recycle_bin"}
    assert result.row_counts["deleted_records"] == 1  # L2, read incrementally
