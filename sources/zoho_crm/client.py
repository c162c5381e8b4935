"""The Zoho CRM API client: retries, OAuth header, concurrency cap, paging and Zoho's errors."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from functools import partial
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

from dlt.sources.helpers.requests import Client, Response, Session
from dlt.sources.helpers.requests.retry import _make_retry
from tenacity import RetryCallState, wait_random
from tenacity.wait import wait_base

from sources.zoho_crm.auth import ZohoAuth
from sources.zoho_crm.errors import ZohoApiError, ZohoResponseError
from sources.zoho_crm.settings import MAX_PER_PAGE

T = TypeVar("T")
NO_DATA = (204, 304)  # "nothing there" / "nothing newer than If-Modified-Since"
CREDITS_HEADER = "X-API-CREDITS-REMAINING"


def credits_spent(response: Response) -> bool:
    """A 429 because the org's rolling 24-hour API credits are gone: retrying cannot help."""
    return response.status_code == 429 and response.headers.get(CREDITS_HEADER, "").strip() == "0"


def _retryable_429(response: Optional[Response], exception: Optional[BaseException]) -> bool:
    """A concurrency 429 clears in seconds: retry it. A spent daily allowance does not."""
    return response is not None and response.status_code == 429 and not credits_spent(response)


def _unreadable_body(response: Optional[Response], exception: Optional[BaseException]) -> bool:
    """Retry a success whose body is not JSON (cut short, or a proxy's HTML page).

    The parsed body is kept on the response so it is decoded once.
    """
    if response is None or response.status_code in NO_DATA or response.status_code >= 400:
        return False
    try:
        response.__dict__["zoho_json"] = response.json()
    except ValueError:
        return True
    return False


class RetryingHttp(Client):
    """dlt's retrying requests client (429, 5xx, resets, timeouts, `Retry-After`), plus a 429's
    wait given only in its body (`details.retry_after`, capped like `Retry-After`), plus random
    jitter (up to one back-off factor) on every wait so parallel threads do not retry in
    lock-step, plus retries of bodies that are not JSON. Attempts, back-off and timeout follow
    dlt's `[runtime]` config (`request_max_attempts`, `request_backoff_factor`, ...)."""

    def __init__(self, max_connections: int) -> None:
        super().__init__(
            max_connections=max_connections,
            raise_for_status=False,
            status_codes=range(500, 600),  # 429s go through _retryable_429
            retry_condition=[_retryable_429, _unreadable_body],
        )
        self.configure()

    def _make_session(self) -> Session:
        session = super()._make_session()
        retry = _make_retry(**self._retry_kwargs)
        max_delay = float(self._retry_kwargs["max_delay"])
        jitter = wait_random(0, self._retry_kwargs["backoff_factor"])
        retry.wait = wait_body_retry_after(retry.wait, max_delay) + jitter
        session.send = retry.wraps(partial(type(session).send, session))  # type: ignore[method-assign]
        return session


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
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._http = http
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # kind of call -> calls answered by Zoho
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
        self, path: str, body: Dict[str, Any], module: Optional[str] = None, kind: str = "api"
    ) -> Optional[Dict[str, Any]]:
        """POST the JSON `body` to `path`; Zoho's JSON answer (2xx, 207 multi-status included)."""
        return self._call("POST", path, module, kind, json=body)

    def _call(
        self,
        method: str,
        path: str,
        module: Optional[str],
        kind: str,
        headers: Optional[Dict[str, str]] = None,
        **request: Any,
    ) -> Optional[Dict[str, Any]]:
        endpoint = f"{method} /crm/{self.api_version}/{path}"
        for attempt in (1, 2):
            token = self.auth.token()
            with self._slots:
                response = self._http.request(
                    method,
                    f"{self.base_url()}/{path}",
                    headers={**(headers or {}), "Authorization": f"Zoho-oauthtoken {token}"},
                    **request,
                )
            self._count(kind, response)
            if response.status_code in NO_DATA:
                return None
            body = response.__dict__.get("zoho_json")
            if body is None:
                body = _json_or_none(response)
            if response.status_code == 401 and _code(body) == "INVALID_TOKEN" and attempt == 1:
                self.auth.invalidate(token)
                continue
            if credits_spent(response):
                raise ZohoApiError(
                    429,
                    "TOO_MANY_REQUESTS",
                    "the org's 24-hour API credit allowance is spent; the next run after it "
                    "refills completes this one",
                    endpoint,
                    module,
                )
            if response.status_code >= 400:
                raise _api_error(response, body, endpoint, module)
            if not isinstance(body, dict):
                raise ZohoResponseError(
                    f"{endpoint} kept answering HTTP {response.status_code} with a body that is "
                    "not Zoho's JSON (cut short, or a proxy's page); nothing from it was loaded"
                )
            return body
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
        """One page of a list: its records and the query of the next page (None on the last)."""
        body = self.get(path, query, headers, module, kind)
        if body is None:
            return [], None
        return body.get(data_key) or [], next_page(query, body)

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

    def interleaved(self, streams: Sequence[Iterator[T]], buffer: int = 4) -> Iterator[T]:
        """The items of several streams, each advanced in its own thread, as they arrive.

        Calls still take slots under `max_concurrency`. At most `buffer` items wait in memory;
        an error in any stream is raised here, and the other streams stop.
        """
        items: queue.Queue[Tuple[str, Any]] = queue.Queue(maxsize=buffer)
        stop = threading.Event()

        def offer(kind: str, value: Any) -> bool:
            """Queue an entry unless the consumer has stopped; False once it has."""
            while not stop.is_set():
                try:
                    items.put((kind, value), timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def drain(stream: Iterator[T]) -> None:
            try:
                for item in stream:
                    if not offer("item", item):
                        return
                offer("done", None)
            except BaseException as error:  # handed to the consumer, which raises it
                offer("error", error)

        threads = [threading.Thread(target=drain, args=(s,), daemon=True) for s in streams]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                kind, value = items.get()
                if kind == "item":
                    yield value
                elif kind == "done":
                    running -= 1
                else:
                    raise value
        finally:
            stop.set()

    def _count(self, kind: str, response: Response) -> None:
        remaining = _credits_header(response)
        with self._lock:
            self.calls[kind] += 1
            if remaining is not None and (
                self.credits_remaining is None or remaining < self.credits_remaining
            ):
                self.credits_remaining = remaining


def _credits_header(response: Response) -> Optional[int]:
    try:
        return int(response.headers[CREDITS_HEADER])
    except (KeyError, ValueError):
        return None


def next_page(query: Dict[str, Any], body: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The query for the page after `body`'s, or None on the last page.

    Zoho's `page` reaches only the first 2,000 records; whenever Zoho hands out a
    `next_page_token` it is followed instead (it may not be combined with `page`).
    """
    info = body.get("info") or {}
    if not info.get("more_records"):
        return None
    following = {k: v for k, v in query.items() if k not in ("page", "page_token")}
    token = info.get("next_page_token")
    if token:
        following["page_token"] = token
    else:
        following["page"] = int(info.get("page", 1)) + 1
    return following


def _json_or_none(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def zoho_error(body: Any) -> Optional[Dict[str, Any]]:
    """Zoho's error object in either of its envelopes, or None.

    The same endpoint answers some errors as one object (`{"code": ..., "message": ...}`) and
    others wrapped in a list, under `data` or under the endpoint's own key (`recycle_bin`):
    `{"data": [{"code": ..., "status": "error", ...}]}`. The first error in the list is Zoho's
    answer for the call (a GET asks one thing).
    """
    if not isinstance(body, dict):
        return None
    if body.get("code"):
        return body
    wrapped = [v for value in body.values() if isinstance(value, list) for v in value]
    errors = [v for v in wrapped if isinstance(v, dict) and v.get("code")]
    return next((e for e in errors if e.get("status", "error") == "error"), None)


def _code(body: Any) -> Optional[str]:
    error = zoho_error(body)
    return str(error["code"]) if error else None


def _api_error(response: Response, body: Any, endpoint: str, module: Optional[str]) -> ZohoApiError:
    error = zoho_error(body)
    if error is not None:
        message = str(error.get("message", ""))
        details = error.get("details")
        if details:
            message = f"{message} {details}"
        return ZohoApiError(response.status_code, str(error["code"]), message, endpoint, module)
    reason = response.reason or "no Zoho error JSON"
    return ZohoApiError(
        response.status_code, f"HTTP_{response.status_code}", reason, endpoint, module
    )


def body_retry_after(response: Optional[Response]) -> Optional[float]:
    """The wait a 429 gives only in its body, `details.retry_after` (seconds), if any."""
    if response is None or response.status_code != 429 or response.headers.get("Retry-After"):
        return None
    error = zoho_error(_json_or_none(response)) or {}
    details = error.get("details")
    wait = details.get("retry_after") if isinstance(details, dict) else None
    try:
        return float(wait) if wait is not None and float(wait) > 0 else None
    except (TypeError, ValueError):
        return None


class wait_body_retry_after(wait_base):  # noqa: N801 - named as tenacity's waits are
    """Wait what a 429's body asks (`details.retry_after`), at most `max_delay`; otherwise
    what `fallback` (dlt's exponential back-off, which honours `Retry-After`) says."""

    def __init__(self, fallback: wait_base, max_delay: float) -> None:
        self.fallback, self.max_delay = fallback, max_delay

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        response = None if outcome is None or outcome.failed else outcome.result()
        wait = body_retry_after(response if isinstance(response, Response) else None)
        if wait is None:
            return float(self.fallback(retry_state))
        return min(wait, self.max_delay)
