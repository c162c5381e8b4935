"""Typed credentials and validation of the source's settings.

Every check raises `ZohoConfigError` with one line naming the bad value and the accepted ones.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple, Union

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue

from sources.zoho_crm.errors import ZohoConfigError
from sources.zoho_crm.settings import DATA_CENTERS, MAX_FIELDS_PER_CALL, MAX_PER_PAGE

# module -> related list API name -> field API names
RelatedListsConfig = Dict[str, Dict[str, List[str]]]


@configspec
class ZohoCredentials(CredentialsConfiguration):
    """A Zoho OAuth client and a refresh token granted to it (a Self Client works)."""

    client_id: str = None
    client_secret: TSecretStrValue = None
    refresh_token: TSecretStrValue = None


def servers(
    data_center: str, accounts_server: Optional[str], api_domain: Optional[str]
) -> Tuple[str, str]:
    """The accounts server and API domain: explicit URLs override the data center's."""
    key = (data_center or "us").strip().lower()
    if key not in DATA_CENTERS:
        raise ZohoConfigError(
            f"unknown data_center {data_center!r}: use one of {', '.join(DATA_CENTERS)}"
        )
    default_accounts, default_api = DATA_CENTERS[key]
    for name, url in (("accounts_server", accounts_server), ("api_domain", api_domain)):
        if url and not url.startswith(("https://", "http://")):
            raise ZohoConfigError(f"{name} {url!r} is not a URL: write it as https://host")
    return (accounts_server or default_accounts).rstrip("/"), (api_domain or default_api).rstrip(
        "/"
    )


def json_setting(value: Any) -> Any:
    """A setting as given, or parsed when it is a JSON list or object (environment variables
    carry lists and mappings as JSON)."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def modules_setting(modules: Any) -> Union[str, List[str]]:
    """`"all"` or a non-empty list of module API names (a JSON list or comma list in env vars)."""
    value = json_setting(modules)
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return "all"
        value = [part.strip() for part in value.split(",") if part.strip()]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(m, str) and m.strip() for m in value)
    ):
        raise ZohoConfigError(
            f'modules {modules!r} is not valid: use "all" or a list of module API names, '
            'e.g. modules = ["Leads", "Contacts"]'
        )
    return list(dict.fromkeys(m.strip() for m in value))


def related_lists_setting(related_lists: Any) -> Union[str, RelatedListsConfig]:
    """`"auto"`, nothing, or module -> {related list -> non-empty list of ≤50 field names}."""
    value = json_setting(related_lists)
    if value is None or value == "" or value == {}:
        return {}
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    example = 'e.g. related_lists = {Leads = {Campaigns = ["Owner", "Campaign_Name"]}}'
    if not isinstance(value, dict):
        raise ZohoConfigError(
            f'related_lists {related_lists!r} is not valid: use "auto" or {example}'
        )
    parsed: RelatedListsConfig = {}
    for module, lists in value.items():
        if not isinstance(lists, dict) or not lists:
            raise ZohoConfigError(
                f"related_lists.{module} must map related list names to field lists; {example}"
            )
        parsed[module] = {}
        for name, fields in lists.items():
            if isinstance(fields, str):
                fields = [f.strip() for f in fields.split(",") if f.strip()]
            if not isinstance(fields, (list, tuple)) or not fields:
                raise ZohoConfigError(
                    f"related_lists.{module}.{name} has no fields: list the field API names "
                    f'to capture, e.g. ["Owner", "Name"]'
                )
            if len(fields) > MAX_FIELDS_PER_CALL:
                raise ZohoConfigError(
                    f"related_lists.{module}.{name} lists {len(fields)} fields; Zoho takes at "
                    f"most {MAX_FIELDS_PER_CALL} per call"
                )
            parsed[module][name] = [str(f) for f in fields]
    return parsed


def positive_int(name: str, value: Any, upper: Optional[int] = None, lower: int = 1) -> int:
    """An integer in lower..upper (1.. by default), or a one-line error naming `name`."""
    try:
        number = int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
    except (TypeError, ValueError):
        number = lower - 1
    if number < lower or (upper is not None and number > upper):
        bound = f"{lower} to {upper}" if upper else f"{lower} or more"
        raise ZohoConfigError(f"{name} {value!r} is out of range: use a whole number from {bound}")
    return number


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_setting(name: str, value: Any) -> timedelta:
    """A duration: seconds as a number, or a number with a unit, e.g. "36h", "2d", "90m"."""
    text = str(value).strip().lower()
    try:
        seconds = float(text[:-1]) * _UNITS[text[-1]] if text[-1:] in _UNITS else float(text)
    except (ValueError, IndexError):
        seconds = -1
    if seconds <= 0:
        raise ZohoConfigError(
            f"{name} {value!r} is not a duration: use seconds or a number with s, m, h or d, "
            'e.g. "1d"'
        )
    return timedelta(seconds=seconds)


def per_page_setting(per_page: Any) -> int:
    return positive_int("per_page", per_page, MAX_PER_PAGE)
