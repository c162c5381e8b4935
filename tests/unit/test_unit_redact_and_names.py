"""The redaction every text leaving a command goes through, and the pipeline's names."""

from __future__ import annotations

import pytest

from pipelines.exceptions import PipelineConfigError
from pipelines.names import (
    catalog_name,
    names_the_dataset,
    old_pipeline_name,
    pipeline_name,
)
from sources.zoho_crm.errors import ZohoConfigError
from sources.zoho_crm.redact import MASK, redact, remember

TOKEN = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {TOKEN} refused", f"token {MASK} refused"),
        ("Authorization: Zoho-oauthtoken abc.def-1", f"Authorization: Zoho-oauthtoken {MASK}"),
        ("header Bearer%20xyz123&x=1", f"header Bearer%20{MASK}&x=1"),
        (
            "invalid_code for grant_type=refresh_token&client_secret=shh123&refresh_token=r9",
            f"invalid_code for grant_type=refresh_token&client_secret={MASK}&refresh_token={MASK}",
        ),
        (
            '{"access_token": "abc123", "expires_in": 3600}',
            f'{{"access_token": "{MASK}", "expires_in": 3600}}',
        ),
        ("code=1000.grant&state=x", f"code={MASK}&state=x"),
        ("nothing secret here: client id 42", "nothing secret here: client id 42"),
    ],
)
def test_token_shapes_and_secret_fields_are_masked(text, expected):
    assert redact(text) == expected


def test_a_remembered_secret_is_masked_also_url_encoded():
    secret = "unit+secret/with spaces"
    remember(secret, None)
    assert redact(f"echo {secret}!") == f"echo {MASK}!"
    assert redact("form unit%2Bsecret%2Fwith+spaces end") == f"form {MASK} end"
    assert redact("path unit%2Bsecret/with%20spaces end") == f"path {MASK} end"


def test_a_short_value_is_not_remembered_as_a_secret():
    remember("abc")  # shorter than MIN_SECRET_LENGTH: it would mask ordinary words
    assert redact("abc def abcdef") == "abc def abcdef"


def test_pipeline_names_per_org():
    assert pipeline_name() == "zoho_crm"
    assert pipeline_name("acme_2") == "zoho_crm_acme_2"
    with pytest.raises(ZohoConfigError, match="letters, digits and underscores"):
        pipeline_name("acme-eu")
    with pytest.raises(PipelineConfigError, match="reserved"):
        pipeline_name("Deleted_stuff")


def test_old_pipeline_names():
    assert old_pipeline_name("zoho_crm") == "zoho_crm_deleted"
    assert old_pipeline_name("zoho_crm_acme") == "zoho_crm_deleted_acme"
    assert old_pipeline_name("zoho_crm_deleted") is None  # already an old name
    assert old_pipeline_name("other_pipeline") is None


def test_duckdb_catalog_names():
    assert catalog_name("/data/zoho_crm.v2.duckdb") == "zoho_crm"
    assert names_the_dataset("/data/Zoho_CRM_Deleted.duckdb")
    assert not names_the_dataset("zoho_crm.duckdb")
