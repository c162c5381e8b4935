"""The raw floor, a measured child's job: plain requests + json + pyarrow + duckdb reading every
page one after another and inserting it — the least any pipeline must do."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any, Dict, Iterator, List

from benchmarks.scale import PER_PAGE


def _raw_pages(
    session: Any, url: str, params: Dict[str, Any], data_key: str, wait: List[float]
) -> Iterator[List[Dict[str, Any]]]:
    """Every page of a Zoho list, following `next_page_token` (else `page`); adds HTTP time
    to `wait[0]`. The floor re-states Zoho's paging rule (`sources.zoho_crm.client.next_page`)
    on purpose: it must not import the pipeline's code, or dlt with it."""
    query: Dict[str, Any] = {**params, "per_page": PER_PAGE, "page": 1}
    while True:
        started = time.perf_counter()
        response = session.get(url, params=query)
        if response.status_code == 204:
            wait[0] += time.perf_counter() - started
            return
        response.raise_for_status()
        body = json.loads(response.content)
        wait[0] += time.perf_counter() - started
        records = body.get(data_key) or []
        if records:
            yield records
        info = body.get("info") or {}
        if not info.get("more_records"):
            return
        token = info.get("next_page_token")
        query = {k: v for k, v in query.items() if k not in ("page", "page_token")}
        if token:
            query["page_token"] = token
        else:
            query["page"] = int(info.get("page", 1)) + 1


def raw_floor(spec: Dict[str, Any]) -> Dict[str, Any]:
    """The least any pipeline must do: fetch every page, type it with Arrow, insert it."""
    import duckdb
    import pyarrow as pa
    import requests

    user = pa.struct([("name", pa.string()), ("id", pa.string())])
    deleted_schema = pa.schema(
        [
            ("id", pa.string()),
            ("display_name", pa.string()),
            ("type", pa.string()),
            ("deleted_time", pa.string()),
            ("deleted_by", user),
            ("created_by", user),
        ]
    )
    bin_schema = pa.schema(
        [
            ("id", pa.string()),
            ("module", pa.struct([("api_name", pa.string()), ("id", pa.string())])),
            ("display_name", pa.string()),
            ("deleted_time", pa.string()),
            ("deleted_by", user),
            ("owner", user),
        ]
    )
    timestamp = pa.timestamp("us", tz="UTC")

    def to_arrow(page: List[Dict[str, Any]], schema: pa.Schema) -> pa.Table:
        table = pa.Table.from_pylist(page, schema=schema).flatten()
        column = table.schema.get_field_index("deleted_time")
        return table.set_column(column, "deleted_time", table["deleted_time"].cast(timestamp))

    url, started, cpu_started = spec["url"], time.perf_counter(), time.process_time()
    wait = [0.0]
    rows: Counter[str] = Counter()
    con = duckdb.connect(spec["db"])

    def insert(table_name: str, page: pa.Table) -> None:
        con.register("page", page)
        if rows[table_name]:
            con.execute(f"INSERT INTO {table_name} SELECT * FROM page")
        else:
            con.execute(f"CREATE TABLE {table_name} AS SELECT * FROM page")
        con.unregister("page")
        rows[table_name] += page.num_rows

    with requests.Session() as session:
        authorize(session, url)
        for module in spec["modules"]:
            pages = _raw_pages(
                session, f"{url}/crm/v8/{module}/deleted", {"type": "all"}, "data", wait
            )
            for page in pages:
                table = to_arrow(page, deleted_schema)
                table = table.add_column(0, "module", pa.array([module] * table.num_rows))
                insert("deleted_records", table)
        bin_params = {"sort_by": "deleted_time", "sort_order": "asc"}
        bin_url = f"{url}/crm/v8/settings/recycle_bin"
        for page in _raw_pages(session, bin_url, bin_params, "recycle_bin", wait):
            insert("recycle_bin", to_arrow(page, bin_schema))
    con.close()
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu_started,
        "rows": dict(rows),
        "http_wait": wait[0],
    }


def authorize(session: Any, url: str) -> None:
    """An access token for `session` from the stand-in, as the pipeline gets one (the
    refresh-token grant with the credentials of the environment); `session` is a
    `requests.Session` (imported in the measured child only)."""
    grant = session.post(
        f"{url}/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": os.environ["SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_ID"],
            "client_secret": os.environ["SOURCES__ZOHO_CRM__CREDENTIALS__CLIENT_SECRET"],
            "refresh_token": os.environ["SOURCES__ZOHO_CRM__CREDENTIALS__REFRESH_TOKEN"],
        },
    )
    grant.raise_for_status()
    session.headers["Authorization"] = f"Zoho-oauthtoken {grant.json()['access_token']}"
