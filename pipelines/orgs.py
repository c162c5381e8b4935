"""Several Zoho orgs: `[sources.zoho_crm.orgs.NAME]` holds the same keys as `[sources.zoho_crm]`.

dlt resolves an org's arguments of the `zoho_crm` source in section
`sources.zoho_crm.orgs.NAME`, so keys an org leaves out fall back to `[sources.zoho_crm]` (dlt
looks in the enclosing sections in turn), typed as the source declares them. Credentials are
the exception: an org never borrows another org's. Each org runs as its own pipeline (its own
state), into the same dataset, its rows told apart by `org`.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping

import dlt
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.providers import EnvironProvider

from pipelines.config import ZOHO_CRM_SECTIONS
from pipelines.errors import RunRefusedError, refused
from pipelines.exceptions import PipelineConfigError
from pipelines.run import RunResult, make_pipeline, run
from sources.zoho_crm import DEFAULT_ORG, org_name, zoho_crm
from sources.zoho_crm.redact import install_log_redaction, remember

CREDENTIAL_KEYS = ("client_id", "client_secret", "refresh_token")
SECRET_KEYS = ("client_secret", "refresh_token")
ORGS_ENV_PREFIX = f"{EnvironProvider.get_key_name('orgs', *ZOHO_CRM_SECTIONS)}__"
DEFAULT_SECTIONS = ("sources", "zoho_crm", "zoho_crm")  # where dlt looks for the source's keys


def configured_orgs() -> List[str]:
    """The default org, then each org named under `[sources.zoho_crm.orgs.*]` in dlt's config
    files or as `SOURCES__ZOHO_CRM__ORGS__<NAME>__*` variables. Reads config only, no Zoho.

    Not a configspec: the orgs are section names, not keys of a known type, and a spec field
    (say `orgs: Dict[str, Any]`) would take the table of the first provider that has one,
    whereas an org's settings may sit in config.toml and its credentials in secrets.toml (or
    in environment variables), and every such name counts. So each provider is asked for the
    `orgs` table through dlt's public `ConfigProvider.get_value`; dlt has no public way to list
    the keys under a section, and environment variables hold no table, so the names of those
    are read from the variables dlt would look up (`EnvironProvider.get_key_name`'s form).
    """
    names = set()
    for provider in dlt.config.config_providers:
        value, _ = provider.get_value("orgs", Any, None, *ZOHO_CRM_SECTIONS)
        if isinstance(value, Mapping):
            names.update(value)
    for key in os.environ:
        if key.startswith(ORGS_ENV_PREFIX) and "__" in key[len(ORGS_ENV_PREFIX) :]:
            names.add(key[len(ORGS_ENV_PREFIX) :].split("__")[0].lower())
    return [DEFAULT_ORG, *sorted(org_name(n) for n in names - {DEFAULT_ORG})]


def remember_configured_secrets() -> None:
    """Have `redact` mask every configured org's client secret and refresh token from the
    start, also in what is said before any run uses them. Best effort: configuration that
    cannot be read here is reported by the command itself."""
    try:
        for org in configured_orgs():
            section = "sources.zoho_crm" + ("" if org == DEFAULT_ORG else f".orgs.{org}")
            remember(*(dlt.secrets.get(f"{section}.credentials.{k}") for k in SECRET_KEYS))
    except Exception:  # noqa: BLE001 - never stop a command over what it may not even read
        pass


def org_settings(org: str) -> Dict[str, Any]:
    """Every source argument of one org, resolved and typed by dlt as the source resolves them."""
    if org_name(org) == DEFAULT_ORG:
        return dict(resolve_configuration(zoho_crm.ref.SPEC(), sections=DEFAULT_SECTIONS))
    return org_source_args(org)


def org_source_args(org: str) -> Dict[str, Any]:
    """Source arguments for one org, resolved by dlt in the org's own config section (none for
    the default org: the source resolves its own)."""
    name = org_name(org)
    if name == DEFAULT_ORG:
        return {}
    section = f"sources.zoho_crm.orgs.{name}"
    # the exact keys: resolving `ZohoCredentials` here would fall back to the default org's
    credentials = {k: dlt.secrets.get(f"{section}.credentials.{k}") for k in CREDENTIAL_KEYS}
    missing = [k for k, v in credentials.items() if v is None]
    if missing:
        env = ", ".join(
            f"SOURCES__ZOHO_CRM__ORGS__{name.upper()}__CREDENTIALS__{k.upper()}" for k in missing
        )
        raise PipelineConfigError(
            f"org {name} has no credentials ({' and '.join(missing)} missing); set them under "
            f"[{section}.credentials] in .dlt/secrets.toml, or as {env}"
        )
    settings = resolve_configuration(
        zoho_crm.ref.SPEC(),
        sections=("sources", "zoho_crm", "orgs", name),
        explicit_value={"credentials": credentials, "org": name},
    )
    return dict(settings)


def run_org(org: str) -> RunResult:
    """One org's run, as a scheduler's task runs it: when Zoho refused a module (or the bin)
    it raises, after the rest has loaded and the run is recorded (failed) for `status`. Its
    log records are redacted, as the CLI's are."""
    install_log_redaction()
    result = run(make_pipeline(org=org), **org_source_args(org))
    refusal = refused(result.modules, result.failed_modules)
    if refusal is not None:
        raise RunRefusedError(*refusal)
    return result
