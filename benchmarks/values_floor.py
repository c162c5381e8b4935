"""The record values' raw floor, a measured child's job: plain requests + json + pyarrow +
duckdb making the pipeline's calls (the fields' metadata, then Get Records sorted by
`Modified_Time`, `page` then `page_token`, a new listing from the last time read past Zoho's
100,000 records) and landing the same table: typed columns, lookups as id and name, lists and
the record as Zoho sent it as JSON. It must not import the pipeline's code, or dlt with it."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

PER_PAGE = 200
_CASTS = {"date": "date", "datetime": "timestamp", "currency": "decimal", "decimal": "decimal",
          "double": "double", "percent": "double", "integer": "int64", "bigint": "int64",
          "boolean": "bool"}  # fmt: skip


def _columns(page: List[Dict[str, Any]], fields: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A page as Arrow columns, typed by the fields' metadata."""
    import pyarrow as pa

    types = {"date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
             "decimal": pa.decimal128(38, 9), "double": pa.float64(), "int64": pa.int64(),
             "bool": pa.bool_()}  # fmt: skip
    columns: Dict[str, Any] = {"id": pa.array([r["id"] for r in page], pa.string())}
    for meta in fields:
        name, kind = meta["api_name"], meta["data_type"]
        if kind == "formula":
            kind = {"double": "double", "integer": "integer", "boolean": "boolean"}.get(
                meta.get("json_type"), "text"
            )
        values = [r.get(name) for r in page]
        if kind in ("lookup", "ownerlookup", "userlookup"):
            columns[f"{name}__id"] = pa.array([v and v["id"] for v in values], pa.string())
            columns[f"{name}__name"] = pa.array([v and v["name"] for v in values], pa.string())
        elif kind in ("multiselectpicklist", "subform"):
            columns[name] = pa.array([None if v is None else json.dumps(v) for v in values])
        elif kind in ("date", "datetime"):
            columns[name] = pa.array(values, pa.string()).cast(types[_CASTS[kind]])
        elif kind in ("currency", "decimal"):
            columns[name] = pa.array(values, pa.float64()).cast(types["decimal"])
        elif kind in _CASTS:
            columns[name] = pa.array(values, types[_CASTS[kind]])
        else:
            columns[name] = pa.array(values, pa.string())
    columns["field_values"] = pa.array(
        [json.dumps({k: v for k, v in r.items() if k != "id"}) for r in page], pa.string()
    )
    return columns


def raw_values_floor(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Every live record of the spec's modules, with every field, into one DuckDB table each."""
    import duckdb
    import pyarrow as pa
    import requests

    from benchmarks.raw_floor import authorize

    url, started, cpu_started = spec["url"], time.perf_counter(), time.process_time()
    con = duckdb.connect(spec["db"])
    rows: Dict[str, int] = {}
    calls = 0
    with requests.Session() as session:
        authorize(session, url)
        for module in spec["modules"]:
            table = "values_" + module.lower()
            metadata = session.get(f"{url}/crm/v8/settings/fields", params={"module": module})
            calls += 1
            fields = [f for f in metadata.json()["fields"] if f["api_name"] != "id"]
            names = ",".join(f["api_name"] for f in fields)
            base = {"fields": names, "sort_by": "Modified_Time", "sort_order": "asc",
                    "per_page": PER_PAGE}  # fmt: skip
            query: Dict[str, Any] = {**base, "page": 1}
            since: Optional[str] = None
            newest: Optional[str] = None
            seen_at_newest: set = set()  # ids read at the newest second (a new listing re-reads)
            while True:
                headers = {"If-Modified-Since": since} if since else {}
                response = session.get(f"{url}/crm/v8/{module}", params=query, headers=headers)
                calls += 1
                if response.status_code in (204, 304):
                    break
                body = json.loads(response.content)
                if response.status_code == 400 and body.get("code") == "LIMIT_REACHED":
                    since, query = newest, {**base, "page": 1}  # a new listing from there
                    continue
                response.raise_for_status()
                page = [r for r in body["data"] if not (r["Modified_Time"] == newest
                                                        and r["id"] in seen_at_newest)]  # fmt: skip
                if page:
                    last = page[-1]["Modified_Time"]
                    if last != newest:
                        newest, seen_at_newest = last, set()
                    seen_at_newest.update(r["id"] for r in page if r["Modified_Time"] == newest)
                    arrow = pa.table(_columns(page, fields))
                    con.register("page", arrow)
                    verb = "INSERT INTO {t} SELECT * FROM page"
                    con.execute((verb if rows.get(table) else "CREATE TABLE {t} AS SELECT * "
                                 "FROM page").format(t=table))  # fmt: skip
                    con.unregister("page")
                    rows[table] = rows.get(table, 0) + arrow.num_rows
                info = body.get("info") or {}
                if not info.get("more_records"):
                    break
                query = {**base, "page_token": info["next_page_token"]}
    con.close()
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu_started,
            "rows": rows, "client_calls": calls}  # fmt: skip
