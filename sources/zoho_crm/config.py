"""Typed credentials and validation of the source's settings.

Every check raises `ZohoConfigError` with one line naming the bad value and the accepted ones.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue

from .errors import ZohoConfigError
from .settings import DATA_CENTERS, MAX_FIELDS_PER_CALL

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


MODULES_EXAMPLE = 'modules = ["Leads", "Contacts"]'
RELATED_LISTS_EXAMPLE = 'related_lists = {Leads = {Campaigns = ["Owner", "Campaign_Name"]}}'
# What the typed settings hold, for one-line errors (dlt's own coercion errors name no form).
SETTING_FORMS = {
    "modules": (
        f"a list of module API names: write e.g. {MODULES_EXAMPLE} (in an environment "
        """variable JSON, SOURCES__ZOHO_CRM__MODULES='["Leads", "Contacts"]'), or leave it out """
        "to read every deletable module"
    ),
    "related_lists": (
        f"a mapping of module -> {{related list -> [field API names]}}: write e.g. "
        f"{RELATED_LISTS_EXAMPLE} (in an environment variable, a JSON object), or set "
        "discover_related_lists = true"
    ),
}
# Values written before these settings were typed, and what to write instead.
RETIRED_VALUES = {
    ("modules", "all"): (
        'modules "all" is no longer a value: remove the modules line to read every deletable '
        f"module, or list them, e.g. {MODULES_EXAMPLE}"
    ),
    ("related_lists", "auto"): (
        'related_lists "auto" is no longer a value: write discover_related_lists = true '
        "instead of it"
    ),
}
_TYPE_FORMS = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list (JSON in an environment variable)",
    dict: "a mapping (a JSON object in an environment variable)",
}


def setting_error(key: str, value: Any, form: Optional[str] = None) -> ZohoConfigError:
    """The one-line error for setting `key` whose `value` is not what it takes (`form`)."""
    if isinstance(value, str) and (key, value.strip().lower()) in RETIRED_VALUES:
        return ZohoConfigError(RETIRED_VALUES[(key, value.strip().lower())])
    secret = key.endswith(("secret", "_token", "password")) or "credentials" in key
    shown = "(value not shown)" if secret else repr(value)[:80]
    return ZohoConfigError(f"{key} {shown} is not {SETTING_FORMS.get(key) or form}")


def coercion_error(key: str, value: Any, hint: Any) -> ZohoConfigError:
    """`setting_error` for a value dlt could not coerce into the setting's type `hint`."""
    return setting_error(key, value, _TYPE_FORMS.get(hint, f"a {getattr(hint, '__name__', hint)}"))


def modules_setting(modules: Optional[List[str]]) -> Optional[List[str]]:
    """None (every deletable module) or the listed module API names, checked and de-duplicated.

    dlt parses the list from TOML or JSON; an explicit Python value is checked here too.
    """
    if modules is None:
        return None
    if (
        not isinstance(modules, (list, tuple))
        or not modules
        or not all(isinstance(m, str) and m.strip() for m in modules)
    ):
        raise setting_error("modules", modules)
    return list(dict.fromkeys(m.strip() for m in modules))


def related_lists_setting(related_lists: Optional[RelatedListsConfig]) -> RelatedListsConfig:
    """module -> {related list -> non-empty list of at most 50 field names}; nothing as {}."""
    if not related_lists:
        return {}
    if not isinstance(related_lists, dict):
        raise setting_error("related_lists", related_lists)
    parsed: RelatedListsConfig = {}
    for module, lists in related_lists.items():
        if not isinstance(lists, dict) or not lists:
            raise ZohoConfigError(
                f"related_lists.{module} must map related list names to field lists; e.g. "
                + RELATED_LISTS_EXAMPLE
            )
        parsed[module] = {}
        for name, fields in lists.items():
            if not isinstance(fields, (list, tuple)) or not all(isinstance(f, str) for f in fields):
                raise ZohoConfigError(
                    f"related_lists.{module}.{name} {fields!r} is not a list of field API names: "
                    'write e.g. ["Owner", "Name"]'
                )
            if not fields:
                raise ZohoConfigError(
                    f"related_lists.{module}.{name} has no fields: list the field API names "
                    f'to capture, e.g. ["Owner", "Name"]'
                )
            if len(fields) > MAX_FIELDS_PER_CALL:
                raise ZohoConfigError(
                    f"related_lists.{module}.{name} lists {len(fields)} fields; Zoho takes at "
                    f"most {MAX_FIELDS_PER_CALL} per call"
                )
            parsed[module][name] = list(fields)
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
