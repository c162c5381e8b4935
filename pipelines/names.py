"""The names the pipeline, its dataset and its DuckDB file go by, and those earlier versions used.

DuckDB names a file's catalog after the file, so a file named after the dataset makes every
`<dataset>.<table>` ambiguous in every client. The names therefore differ: pipeline `zoho_crm`
loads into dlt's default file for it, `zoho_crm.duckdb`, and into dataset `zoho_crm_deleted`.
Each named org is pipeline `zoho_crm_<org>` (its own state) loading into that same file and
dataset, its rows told apart by `org`. Earlier versions named the pipeline and its file after
the dataset; `pipelines.old_names` moves what they left.
"""

from __future__ import annotations

import os
from typing import Optional

from pipelines.exceptions import PipelineConfigError
from sources.zoho_crm import DEFAULT_ORG, org_name

PIPELINE_NAME = "zoho_crm"
DATASET_NAME = "zoho_crm_deleted"
DUCKDB_FILE = f"{PIPELINE_NAME}.duckdb"  # dlt's default file for the pipeline; all orgs share it
OLD_PIPELINE_NAME = DATASET_NAME  # earlier versions: pipeline and file named after the dataset
OLD_DUCKDB_FILE = f"{OLD_PIPELINE_NAME}.duckdb"
_OLD_SUFFIX = OLD_PIPELINE_NAME[len(PIPELINE_NAME) + 1 :]  # "deleted"


def pipeline_name(org: str = DEFAULT_ORG) -> str:
    """`zoho_crm`, or `zoho_crm_<org>` for a named org (its own state).

    An org named `deleted...` would take a pipeline name of earlier versions (`zoho_crm_deleted`
    and `zoho_crm_deleted_<org>`), whose state `old_names` takes over: such names are refused.
    """
    org = org_name(org)  # letters, digits and underscores: never a path, never a stray folder
    if org == DEFAULT_ORG:
        return PIPELINE_NAME
    if org.lower().startswith(_OLD_SUFFIX):
        raise PipelineConfigError(
            f"org {org!r}: org names starting with {_OLD_SUFFIX!r} are reserved (earlier "
            f"versions named their pipelines {OLD_PIPELINE_NAME}_<org>): choose another name"
        )
    return f"{PIPELINE_NAME}_{org}"


def old_pipeline_name(name: str) -> Optional[str]:
    """The name earlier versions gave the pipeline now called `name`; None for other names
    (old names included)."""
    if name.startswith(OLD_PIPELINE_NAME):
        return None
    if name != PIPELINE_NAME and not name.startswith(f"{PIPELINE_NAME}_"):
        return None
    return OLD_PIPELINE_NAME + name[len(PIPELINE_NAME) :]


def catalog_name(path: str) -> str:
    """The catalog DuckDB names the file at `path` after: its name up to the first dot."""
    return os.path.basename(path).split(".")[0]


def names_the_dataset(path: str, dataset_name: str = DATASET_NAME) -> bool:
    """True when the DuckDB file at `path` would name its catalog as the dataset is named,
    which makes `<dataset>.<table>` ambiguous."""
    return catalog_name(path).lower() == dataset_name.lower()
