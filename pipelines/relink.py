"""`restore --recreate --relink`: point the related records of a recreated record at it.

While a record sat in the bin, runs captured its related records (`deleted_related_records`:
parent module and id, related list, the related record's id). Once the record is recreated, each
related record that still exists in Zoho gets its lookup to the parent set to the new record
with Update Records (`PUT /crm/{version}/{related module}`, at most 100 a call). The related
module comes from `/settings/related_lists`, the lookup field from its `/settings/fields`: the
one lookup to the parent's module (a list without exactly one, such as a many-to-many list,
is not relinked, and the dry run says so). Which related records still exist, Get Records by
`ids` tells. Each outcome goes to `recreated_records` (`action` = `relink`, `module` and
`old_id` the related record's, `new_id` the parent's new id, `field` the lookup); a link
relinked once is not sent again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Dict, List, Optional, Set, Tuple

from pipelines.sql import query_rows
from sources.zoho_crm.client import ZohoClient
from sources.zoho_crm.metadata import fields_of, related_lists_of
from sources.zoho_crm.related import RELATED_TABLE
from sources.zoho_crm.warehouse import Queryable, existing_tables

MAX_RECORDS = 100  # Update Records' and Get Records' `ids` limit


@dataclass
class Link:
    parent_module: str
    parent_id: str
    related_list: str
    related_id: str


def captured_links(pipeline: Queryable, org: str, parents: Set[Tuple[str, str]]) -> List[Link]:
    """The related records captured of `parents` ((module, id) pairs)."""
    if RELATED_TABLE not in existing_tables(pipeline) or not parents:
        return []
    rows = query_rows(
        pipeline,
        f"SELECT parent_module, parent_id, related_list, id FROM {{ds}}.{RELATED_TABLE} "
        "WHERE org = %s ORDER BY parent_module, parent_id, related_list, id",
        org,
    )
    return [Link(*map(str, row)) for row in rows if (row[0], row[1]) in parents]


def lookup_of(client: ZohoClient, parent_module: str, related_list: str) -> Tuple[str, str]:
    """(related module, lookup field) of a related list; the field "" when not one lookup."""
    listed = related_lists_of(client, parent_module).get(related_list) or {}
    module = ((listed.get("module") or {}).get("api_name")) or related_list
    lookups = [
        f["api_name"]
        for f in fields_of(client, module)
        if f.get("data_type") == "lookup"
        and ((f.get("lookup") or {}).get("module") or {}).get("api_name") == parent_module
    ]
    return module, lookups[0] if len(lookups) == 1 else ""


def still_there(client: ZohoClient, module: str, field: str, ids: List[str]) -> Set[str]:
    """The ids of `module` Get Records still lists."""
    found: Set[str] = set()
    for start in range(0, len(ids), MAX_RECORDS):
        chunk = ids[start : start + MAX_RECORDS]
        params = {"ids": ",".join(chunk), "fields": field}
        for page in client.pages(module, "data", params, module=module, kind="relink"):
            found.update(str(r.get("id")) for r in page)
    return found


def relink(
    client: ZohoClient,
    links: List[Link],
    new_ids: Dict[Tuple[str, str], str],
    done: Set[Tuple[str, str, str]],
    triggers: List[str],
    row: Any,
) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    """PUT each link that still exists at its parent's new record; the audit rows (made by
    `row(module, old_id, at, **values)`) and the links left alone, by why."""
    left: Dict[str, int] = defaultdict(int)
    targets: Dict[Tuple[str, str], List[Tuple[Link, str]]] = defaultdict(list)
    lookups: Dict[Tuple[str, str], Tuple[str, str]] = {}
    for link in links:
        new_id = new_ids.get((link.parent_module, link.parent_id))
        key = (link.parent_module, link.related_list)
        if key not in lookups:
            lookups[key] = lookup_of(client, *key)
        module, field = lookups[key]
        if new_id is None:
            left["parent not recreated"] += 1
        elif not field:
            left[f"{link.related_list}: no single lookup to {link.parent_module}"] += 1
        elif (module, link.related_id, new_id) in done:
            left["relinked before"] += 1
        else:
            targets[(module, field)].append((link, new_id))
    rows: List[Dict[str, Any]] = []
    for (module, field), pairs in sorted(targets.items()):
        alive = still_there(client, module, field, [link.related_id for link, _ in pairs])
        left["no longer in Zoho"] += sum(1 for link, _ in pairs if link.related_id not in alive)
        pairs = [(link, new_id) for link, new_id in pairs if link.related_id in alive]
        for start in range(0, len(pairs), MAX_RECORDS):
            rows += _put(client, module, field, pairs[start : start + MAX_RECORDS], triggers, row)
    return rows, {k: n for k, n in left.items() if n}


def _put(
    client: ZohoClient,
    module: str,
    field: str,
    pairs: List[Tuple[Link, str]],
    triggers: List[str],
    row: Any,
) -> List[Dict[str, Any]]:
    at = datetime.now(UTC)
    data = [{"id": link.related_id, field: {"id": new_id}} for link, new_id in pairs]
    answer = client.post(module, {"data": data, "trigger": triggers}, module=module,
                         kind="relink", method="PUT")  # fmt: skip
    results: List[Optional[Dict[str, Any]]] = list((answer or {}).get("data") or [])
    results += [None] * (len(pairs) - len(results))
    rows = []
    for (link, new_id), result in zip(pairs, results, strict=True):
        code = str((result or {}).get("code", "NO_RESULT"))
        message = f"{link.parent_module} {link.parent_id} -> {new_id}: " + str(
            (result or {}).get("message", "Zoho's answer named no outcome")
        )
        rows.append(row(module, link.related_id, at, new_id=new_id, code=code, message=message,
                        field=field, action="relink"))  # fmt: skip
    return rows
