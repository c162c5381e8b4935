"""Times as Zoho writes them, and the settings' checks: durations, whole numbers, servers,
module and related-list settings, each refused in one line naming the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sources.zoho_crm.config import (
    duration_setting,
    modules_setting,
    positive_int,
    related_lists_setting,
    servers,
    setting_error,
)
from sources.zoho_crm.errors import ZohoConfigError
from sources.zoho_crm.records import (
    MISSING,
    MalformedEntryError,
    checked_entry,
    entry_id,
    entry_time,
    module_slug,
    parse_time,
    shown,
    zoho_time,
)

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ["2026-11-30T17:30:00+05:30", "2026-11-30T04:00:00-08:00", "2026-11-30T12:00:00Z"],
)
def test_zoho_times_with_any_offset_are_the_same_utc_instant(text):
    parsed = parse_time(text)
    assert parsed == NOON and parsed.tzinfo == UTC


def test_a_time_without_an_offset_is_refused():
    with pytest.raises(ValueError, match="no offset"):
        parse_time("2026-11-30T12:00:00")


def test_zoho_time_is_whole_seconds_in_utc_and_reads_back():
    ist = timezone(timedelta(hours=5, minutes=30))
    instant = datetime(2026, 11, 30, 17, 30, 0, 987654, tzinfo=ist)
    assert zoho_time(instant) == "2026-11-30T12:00:00+00:00"
    assert parse_time(zoho_time(instant)) == NOON


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"deleted_time": "2026-11-30T17:30:00+05:30"}, NOON),
        ({"deleted_time": "yesterday"}, None),
        ({"deleted_time": 1764504000}, None),
        ({}, None),
        ("not an entry", None),
    ],
)
def test_entry_time_is_none_when_zoho_sent_no_time_it_could_mean(item, expected):
    assert entry_time(item) == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"id": "41"}, "41"),
        ({"id": 41}, "41"),
        ({"id": True}, None),
        ({"id": " "}, None),
        ([], None),
    ],
)
def test_entry_id_takes_text_and_numbers_only(item, expected):
    assert entry_id(item) == expected


def test_checked_entry_names_the_field_and_value_that_are_wrong():
    assert checked_entry({"id": 7, "x": 1}) == {"id": "7", "x": 1}
    with pytest.raises(MalformedEntryError) as raised:
        checked_entry({"id": None})
    assert (raised.value.field, raised.value.value) == ("id", None)
    with pytest.raises(MalformedEntryError, match="entry .* is not a JSON object"):
        checked_entry(["a"])


def test_shown_values_are_json_cut_at_80_characters():
    assert shown(MISSING) == "missing"
    assert shown({"a": 1}) == '{"a": 1}'
    long = shown("x" * 200)
    assert len(long) == 80 and long.endswith("...")


def test_module_slug():
    assert module_slug("Price_Books") == "price_books"
    assert module_slug("Custom-Module 2") == "custom_module_2"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("15", 15), (15, 15), ("90s", 90), ("90m", 5400), ("36h", 129600), ("1d", 86400),
     (" 2D ", 172800), ("1.5h", 5400)],
)  # fmt: skip
def test_durations_in_seconds_or_with_a_unit(value, seconds):
    assert duration_setting("reconcile_every", value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["", "0", "-1", "1w", "d", "soon", None])
def test_a_duration_that_is_none_is_refused_naming_the_key_and_value(value):
    with pytest.raises(ZohoConfigError) as raised:
        duration_setting("incident_gap", value)
    assert str(raised.value).startswith(f"incident_gap {value!r} is not a duration")


def test_whole_numbers_within_bounds():
    assert positive_int("per_page", "200", 200) == 200
    assert positive_int("token_retries", 0, 5, lower=0) == 0
    assert positive_int("max_concurrency", 25.0, 25) == 25
    for bad in (0, 26, 4.5, "four", None):
        with pytest.raises(
            ZohoConfigError, match="max_concurrency .* use a whole number from 1 to 25"
        ):
            positive_int("max_concurrency", bad, 25)
    with pytest.raises(ZohoConfigError, match="from 1 or more"):
        positive_int("load_chunk_rows", -3)


def test_servers_follow_the_data_center_unless_given():
    assert servers("EU ", None, None) == ("https://accounts.zoho.eu", "https://www.zohoapis.eu")
    assert servers("us", "http://127.0.0.1:8080/", None)[0] == "http://127.0.0.1:8080"
    with pytest.raises(ZohoConfigError, match="unknown data_center 'mars': use one of us, eu"):
        servers("mars", None, None)
    with pytest.raises(ZohoConfigError, match="api_domain 'www.zohoapis.com' is not a URL"):
        servers("us", None, "www.zohoapis.com")


def test_modules_are_stripped_and_deduplicated_and_a_non_list_refused():
    assert modules_setting(None) is None
    assert modules_setting([" Leads", "Deals", "Leads"]) == ["Leads", "Deals"]
    for bad in ([], ["Leads", ""], "Leads", [3]):
        with pytest.raises(ZohoConfigError, match="is not a list of module API names"):
            modules_setting(bad)


def test_retired_values_say_what_to_write_instead():
    assert "discover_related_lists = true" in str(setting_error("related_lists", "AUTO"))
    assert "remove the modules line" in str(setting_error("modules", "all"))


def test_a_secret_settings_value_is_never_shown():
    message = str(setting_error("credentials.client_secret", "s3cr3t-value", "text"))
    assert "s3cr3t" not in message and "(value not shown)" in message


def test_related_lists_are_checked_list_by_list():
    assert related_lists_setting(None) == {}
    assert related_lists_setting({"Leads": {"Campaigns": ("Owner",)}}) == {
        "Leads": {"Campaigns": ["Owner"]}
    }
    cases = [
        ({"Leads": {}}, "related_lists.Leads must map related list names"),
        ({"Leads": {"Campaigns": []}}, "related_lists.Leads.Campaigns has no fields"),
        ({"Leads": {"Campaigns": "Owner"}}, "'Owner' is not a list of field API names"),
        ({"Leads": {"Campaigns": [f"F{n}" for n in range(51)]}}, "lists 51 fields; Zoho takes"),
    ]
    for value, words in cases:
        with pytest.raises(ZohoConfigError, match=words):
            related_lists_setting(value)
