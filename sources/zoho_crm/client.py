"""The Zoho CRM API client: OAuth, concurrency cap, call counts, paging and Zoho's errors."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .auth import ZohoAuth
from .errors import ZohoApiError, ZohoMalformedError, ZohoResponseError
from .records import shown
from .settings import MAX_DISCRETE_RECORDS, MAX_PER_PAGE
from .transport import (
    CREDITS_HEADER,
    NO_DATA,
    Reply,
    RetryingHttp,
    credits_spent,
    zoho_error,
)


class ZohoClient:
    """Calls Zoho CRM's API for one org.

    At most `max_concurrency` calls are in flight at once across all threads, so the pipeline
    stays under Zoho's per-org concurrency cap instead of causing 429s and retrying them.
    """

    def __init__(
        self,
        auth: ZohoAuth,
        api_domain: Optional[str],
        default_api_domain: str,
        api_version: str,
        max_concurrency: int,
        http: RetryingHttp,
        per_page: int = MAX_PER_PAGE,
    ) -> None:
        self.auth = auth
        self._api_domain = api_domain  # explicit config wins over what the token says
        self._default_api_domain = default_api_domain
        self.api_version = api_version
        self.per_page = per_page
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._http = http
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # kind of call -> calls answered by Zoho
        self.last_module: Optional[str] = None  # the module of the latest call (for progress)
        # Zoho's X-API-CREDITS-REMAINING (sent once half the daily allowance is used): the
        # lowest value seen this run, None while Zoho has not sent it
        self.credits_remaining: Optional[int] = None

    def base_url(self) -> str:
        domain = self._api_domain or self.auth.api_domain or self._default_api_domain
        return f"{domain.rstrip('/')}/crm/{self.api_version}"

    def get(
        self,
        path: str,
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, str]] = None,
        module: Optional[str] = None,
        kind: str = "api",
    ) -> Optional[Dict[str, Any]]:
        """GET `path` (below /crm/{version}); None when Zoho says there is nothing there."""
        return self._call("GET", path, module, kind, params=params, headers=headers)

    def post(
        self,
        path: str,
        body: Dict[str, Any],
        module: Optional[str] = None,
        kind: str = "api",
        method: str = "POST",
        once: bool = False,
    ) -> Optional[Dict[str, Any]]:
        """POST (or `method`) the JSON `body` to `path`; Zoho's JSON answer (2xx, 207
        multi-status included). `once`: a call not safe to repeat is sent once, not retried
        (a connection error or a 5xx is the caller's to resolve). A 400 whose `data` lists one
        result per record sent (Create/Update Records when every record failed) is an answer
        too, not an error."""
        return self._call(method, path, module, kind, once, json=body)

    def _call(
        self,
        method: str,
        path: str,
        module: Optional[str],
        kind: str,
        once: bool = False,
        **request: Any,
    ) -> Optional[Dict[str, Any]]:
        endpoint = f"{method} /crm/{self.api_version}/{path}"
        send = self._http.request_once if once else self._http.request
        for attempt in (1, 2):
            with self._slots:
                reply = send(method, f"{self.base_url()}/{path}", auth=self.auth, **request)
            self._count(kind, reply, module)
            if reply.status in NO_DATA:
                return None
            if reply.status == 401 and _code(reply.body) == "INVALID_TOKEN" and attempt == 1:
                self.auth.refused(reply.response.request)
                continue
            if credits_spent(reply.response):
                raise ZohoApiError(
                    429,
                    "TOO_MANY_REQUESTS",
                    "the org's 24-hour API credit allowance is spent; the next run after it "
                    "refills completes this one",
                    endpoint,
                    module,
                )
            if reply.status >= 400 and not _per_record(reply, request.get("json")):
                raise _api_error(reply, endpoint, module)
            if not isinstance(reply.body, dict):
                raise ZohoResponseError(
                    f"{endpoint} kept answering HTTP {reply.status} with a body that is "
                    "not Zoho's JSON (cut short, or a proxy's page); nothing from it was loaded"
                )
            return reply.body
        raise AssertionError("unreachable")

    def first_query(self, params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The query of a list's first page."""
        return {**(params or {}), "per_page": self.per_page, "page": 1}

    def page(
        self,
        path: str,
        data_key: str,
        query: Dict[str, Any],
        headers: Optional[Dict[str, str]] = None,
        module: Optional[str] = None,
        kind: str = "api",
    ) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """One page of a list: its records and the query of the next page (None on the last).

        Raises `ZohoMalformedError` for a page whose records are not a list, or that does
        not say whether more follow when its length cannot tell either (see `next_page`).
        """
        body = self.get(path, query, headers, module, kind)
        if body is None:
            return [], None
        endpoint = f"GET /crm/{self.api_version}/{path}"
        records = body.get(data_key)
        if not isinstance(records, list):
            what = f"`{data_key}` is {shown(records) if data_key in body else 'missing'}"
            raise ZohoMalformedError(endpoint, module, f"{what}, not a list of records")
        try:
            return records, next_page(query, body, len(records))
        except ValueError as error:
            raise ZohoMalformedError(endpoint, module, str(error)) from None

    def pages(
        self,
        path: str,
        data_key: str,
        params: Optional[Dict[str, Any]] = None,
        headers: Optional[Dict[str, str]] = None,
        module: Optional[str] = None,
        kind: str = "api",
    ) -> Iterator[List[Dict[str, Any]]]:
        """Yield each page's records, `per_page` (200) at a time, until Zoho says there are no
        more (see `next_page`)."""
        query: Optional[Dict[str, Any]] = self.first_query(params)
        while query is not None:
            records, query = self.page(path, data_key, query, headers, module, kind)
            if records:
                yield records

    def _count(self, kind: str, reply: Reply, module: Optional[str]) -> None:
        remaining = _credits_header(reply)
        with self._lock:
            self.calls[kind] += 1
            self.last_module = module or self.last_module
            if remaining is not None and (
                self.credits_remaining is None or remaining < self.credits_remaining
            ):
                self.credits_remaining = remaining


def _per_record(reply: Reply, sent: Any) -> bool:
    """A 400 answering each record of a `data` list sent with its own error result."""
    records = sent.get("data") if isinstance(sent, dict) else None
    results = reply.body.get("data") if isinstance(reply.body, dict) else None
    return (
        reply.status == 400
        and isinstance(records, list)
        and isinstance(results, list)
        and len(results) == len(records)
        and all(isinstance(r, dict) and r.get("status") == "error" for r in results)
    )


def _credits_header(reply: Reply) -> Optional[int]:
    try:
        return int(reply.response.headers[CREDITS_HEADER])
    except (KeyError, ValueError):
        return None


def next_page(
    query: Dict[str, Any], body: Dict[str, Any], count: int
) -> Optional[Dict[str, Any]]:
    """The query for the page after `body`'s (of `count` records), or None on the last page.

    Zoho's `page` reaches only the first 2,000 records; whenever Zoho hands out a
    `next_page_token` it is followed instead (it may not be combined with `page`). A page
    whose `info` (or `info.more_records`) is missing or not what Zoho sends is read by its
    length: shorter than `per_page` is the last one, a full one is followed by the next
    `page`. Where `page` cannot go (past 2,000 records, or a `page_token` query) that raises
    ValueError rather than take the page for the last.
    """
    info = body.get("info")
    info = info if isinstance(info, dict) else None
    more = info.get("more_records") if info else None
    more = more if isinstance(more, bool) else None
    token = info.get("next_page_token") if info else None
    if more is False:
        return None
    following = {k: v for k, v in query.items() if k not in ("page", "page_token")}
    if token:
        following["page_token"] = token
        return following
    per_page = int(query.get("per_page", MAX_PER_PAGE))
    if more is None:
        if count < per_page:
            return None  # a short page is the last
        if "page" not in query or int(query["page"]) * per_page >= MAX_DISCRETE_RECORDS:
            missing = "no `info.more_records`" if info else "no `info` object"
            raise ValueError(
                f"{missing} and a full page of {count} records where `page` cannot reach on "
                "without Zoho's next_page_token, so whether more follow is unknown"
            )
    following["page"] = int((info or {}).get("page") or query.get("page", 1)) + 1
    return following


def _code(body: Any) -> Optional[str]:
    error = zoho_error(body)
    return str(error["code"]) if error else None


def _api_error(reply: Reply, endpoint: str, module: Optional[str]) -> ZohoApiError:
    status = reply.status
    error = zoho_error(reply.body)
    if error is not None:
        message = str(error.get("message", ""))
        details = error.get("details")
        if details:
            message = f"{message} {details}"
        return ZohoApiError(status, str(error["code"]), message, endpoint, module)
    reason = reply.response.reason or "no Zoho error JSON"
    return ZohoApiError(status, f"HTTP_{status}", reason, endpoint, module)
