"""dlt's warning that the values' JSON hints differ from Arrow's types is left out, on dlt's
logger alone, and installing the filter again adds nothing (`sources.zoho_crm.values`)."""

from __future__ import annotations

import logging

import pytest

from sources.zoho_crm.values import JSON_HINTS_EXPECTED, JsonHintsExpected, expect_json_hints

WARNING = (
    "In resource: {}, when merging arrow schema with dlt schema, several column hints were "
    "different. dlt schema hints were kept and arrow schema and data were unmodified."
)


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("dlt", level, __file__, 1, message, None, None)


@pytest.fixture
def dlt_logger():
    logger = logging.getLogger("dlt")
    before = list(logger.filters)
    yield logger
    logger.filters[:] = before


def test_installed_once_on_dlt_s_logger_only(dlt_logger):
    expect_json_hints()
    expect_json_hints()
    assert sum(isinstance(f, JsonHintsExpected) for f in dlt_logger.filters) == 1
    assert JSON_HINTS_EXPECTED not in logging.getLogger().filters
    assert JSON_HINTS_EXPECTED not in logging.getLogger("sources.zoho_crm").filters


def test_only_the_values_warning_is_left_out(dlt_logger):
    expect_json_hints()
    assert not dlt_logger.filter(record(WARNING.format("values_leads")))
    assert dlt_logger.filter(record(WARNING.format("deleted_records_leads")))  # not values'
    column = "In resource: values_leads, when merging arrow schema on column tags. The hint ..."
    assert dlt_logger.filter(record(column, logging.INFO))  # dlt's per-column INFO stays
    assert dlt_logger.filter(record("Load package 1 is loaded"))
