"""The stand-in's GET API: `/{module}/deleted`, related records of a deleted record, the
recycle bin and the metadata endpoints under `/settings`, answered from an `Org`.

Each route answers (route name, HTTP status, JSON payload or None for an empty body), or raises
`ApiError`.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from zoho_standin.errors import ApiError, invalid_data, invalid_url
from zoho_standin.filters import BIN_SORTS, bin_filter, parse_time, sort_key
from zoho_standin.org import Module, Org
from zoho_standin.paging import page
from zoho_standin.records import record_json

MAX_FIELDS = 50
MAX_IDS = 100  # Get Records' `ids` takes at most 100
MAX_LISTING = 100_000  # records one Get Records listing reaches, `page_token` included
RECORD_SORTS = ("id", "Created_Time", "Modified_Time")

Answer = Tuple[int, Optional[Dict]]


def route(
    org: Org, path: str, query: Dict[str, str], headers: Mapping[str, str]
) -> Tuple[str, int, Optional[Dict]]:
    """Answer one API call; the route name is what the server counts the call under."""
    match = re.fullmatch(r"/crm/v\d+/(.+)", path)
    if not match:
        raise invalid_url()
    parts = match.group(1).split("/")
    if parts[0] == "settings":
        return _settings(org, parts[1:], query)
    if len(parts) == 1:
        return ("records", *_records(org, parts[0], query, headers.get("If-Modified-Since")))
    if len(parts) == 2 and parts[1] == "deleted":
        return ("deleted", *_deleted(org, parts[0], query, headers.get("If-Modified-Since")))
    if len(parts) == 4 and parts[1] == "deleted":
        return ("related", *_related(org, parts[0], parts[2], parts[3], query))
    raise invalid_url()


def _module(org: Org, name: str) -> Module:
    module = org.modules.get(name)
    if module is None or not module.api_supported:
        raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid")
    return module


def _deleted(org: Org, module: str, query: Dict[str, str], since_header: Optional[str]) -> Answer:
    """Zoho's v8 examples answer this endpoint's 400s wrapped in a list under `data`."""
    try:
        _module(org, module)
    except ApiError as error:
        error.envelope = "data"
        raise
    kind = query.get("type", "all")
    if kind not in ("all", "recycle", "permanent"):
        raise ApiError(
            400,
            "PATTERN_NOT_MATCHED",
            "Please check whether the input values are correct",
            envelope="data",
        )
    since = parse_time(since_header, "If-Modified-Since") if since_header else None
    entries = org.newest_first(module, since)
    if kind != "all":
        entries = [e for e in entries if e.type == kind]
    if not entries:
        return (304, None) if since else (204, None)
    chunk, info = page(entries, query)
    return 200, {"data": [e.deleted_json() for e in chunk], "info": info}


def _records(org: Org, module: str, query: Dict[str, str], since_header: Optional[str]) -> Answer:
    """Get Records: live records with `id` and the fields asked for (mandatory, at most 50),
    modified at or after `If-Modified-Since`, sorted, paged as every listing."""
    _module(org, module)
    fields = [f for f in query.get("fields", "").split(",") if f]
    if not fields:
        raise ApiError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                       {"param_name": "fields"})  # fmt: skip
    if len(fields) > MAX_FIELDS:
        raise ApiError(400, "LIMIT_EXCEEDED", f"at most {MAX_FIELDS} fields",
                       {"param_name": "fields", "limit": MAX_FIELDS})  # fmt: skip
    known = {f.api_name: f for f in org.live.fields.get(module, [])}
    for name in fields:
        if name != "id" and (name not in known or known[name].refused):
            raise ApiError(400, "INVALID_DATA", "the field name given seems to be invalid",
                           {"api_name": name})  # fmt: skip
    sort_by = query.get("sort_by", "id")
    if sort_by not in RECORD_SORTS or query.get("sort_order", "desc") not in ("asc", "desc"):
        raise invalid_data(f"sort_by takes {', '.join(RECORD_SORTS)}; sort_order asc or desc")
    descending = query.get("sort_order", "desc") == "desc"
    since = parse_time(since_header, "If-Modified-Since") if since_header else None
    records: Sequence[Dict[str, Any]]
    if query.get("ids"):
        wanted = query["ids"].split(",")
        if len(wanted) > MAX_IDS:
            raise ApiError(400, "LIMIT_EXCEEDED", f"at most {MAX_IDS} ids")
        found = [r for r in map(lambda i: org.live.get(module, i), dict.fromkeys(wanted)) if r]
        records = sorted(
            (r for r in found if since is None or r["Modified_Time"] >= since),
            key=lambda r: (r[sort_by], r["id"]),
            reverse=descending,
        )
    else:
        records = org.live.listing(module, sort_by, descending, since)
    if not records:
        return (304, None) if since_header else (204, None)
    chunk, info = page(records, query, MAX_LISTING)
    info.update(sort_by=sort_by, sort_order=query.get("sort_order", "desc"))
    return 200, {"data": [record_json(r, fields) for r in chunk], "info": info}


def _related(org: Org, module: str, record_id: str, relation: str, query: Dict[str, str]) -> Answer:
    related_list = _module(org, module).related_lists.get(relation)
    if related_list is None:
        raise invalid_data("the relation name given seems to be invalid")
    if related_list.type == "multiselectlookup":
        raise ApiError(400, "NOT_SUPPORTED", "multiselect lookup relations are not supported")
    fields = [f for f in query.get("fields", "").split(",") if f]
    if not fields:
        raise ApiError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing")
    if len(fields) > MAX_FIELDS:
        raise ApiError(400, "LIMIT_EXCEEDED", f"at most {MAX_FIELDS} fields")
    entry = org.entry(module, record_id)
    if entry is None or entry.type != "recycle":
        return 204, None
    rows = org.related.get((module, record_id, relation), [])
    if not rows:
        return 204, None
    chunk, info = page(rows, query)
    data = [{"id": r["id"], **{f: r[f] for f in fields if f in r}} for r in chunk]
    return 200, {"data": data, "info": info}


def _settings(org: Org, parts: List[str], query: Dict[str, str]) -> Tuple[str, int, Optional[Dict]]:
    if parts == ["modules"]:
        modules = [
            {
                "api_name": m.api_name,
                "module_name": m.api_name,
                "id": m.id,
                "api_supported": m.api_supported,
                "deletable": m.deletable,
                "generated_type": m.generated_type,
            }
            for m in org.modules.values()
        ]
        return "modules", 200, {"modules": modules}
    if parts == ["related_lists"]:
        module = _module(org, query.get("module", ""))
        lists = [
            {
                "api_name": r.api_name,
                "name": r.api_name,
                "module": {"api_name": r.module},
                "type": r.type,
                "href": f"{module.api_name}/{{ID}}/{r.api_name}",
            }
            for r in module.related_lists.values()
        ]
        return "related_lists", 200, {"related_lists": lists}
    if parts == ["fields"]:
        return "fields", 200, _fields(org, query.get("module", ""))
    if parts and parts[0] == "recycle_bin":
        return ("recycle_bin", *_recycle_bin(org, parts[1:], query))
    raise invalid_url()


def _fields(org: Org, name: str) -> Dict:
    """The fields of `name`: its live records' (see `records`), else those related lists show
    (and `id`), as `/settings/fields` lists them."""
    if org.live.fields.get(name):
        return {"fields": [f.as_json() for f in org.live.fields[name]]}
    names = {"id"}
    for m in org.modules.values():
        for r in m.related_lists.values():
            if r.module == name:
                names.update(r.fields)
    if len(names) == 1 and name not in org.modules:
        raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid")
    return {"fields": [{"api_name": n, "data_type": "text"} for n in sorted(names)]}


def _recycle_bin(org: Org, parts: List[str], query: Dict[str, str]) -> Answer:
    sort_by = query.get("sort_by", "deleted_time")
    if sort_by not in BIN_SORTS:
        raise invalid_data(f"invalid sort_by {sort_by}")
    descending = query.get("sort_order", "desc") == "desc"
    if parts:
        entries = [e for e in org.in_bin(not descending) if e.id == parts[0]]
    elif query.get("ids"):
        wanted = set(query["ids"].split(","))
        entries = [e for e in org.in_bin(not descending) if e.id in wanted]
    elif query.get("filters"):
        entries = org.in_bin(not descending, bin_filter(query["filters"]))
    else:
        entries = org.in_bin(not descending)
    if sort_by != "deleted_time":
        entries = sorted(entries, key=sort_key(sort_by), reverse=descending)
    if not entries:
        return 204, None
    chunk, info = page(entries, query)
    module_ids = {name: m.id for name, m in org.modules.items()}
    return 200, {"recycle_bin": [e.bin_json(module_ids[e.module]) for e in chunk], "info": info}
