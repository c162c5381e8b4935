"""OAuth for Zoho CRM: trade the refresh token for an access token and reuse it until it expires.

Zoho limits how many access tokens a refresh token may hold and how often they are minted, so
one token is shared by every call (and thread) of a run, refreshed only when it is about to
expire or when Zoho answers 401 INVALID_TOKEN.

Past its limit Zoho's accounts server throttles grants ("Access Denied", "too many requests",
`status: failure`, HTTP 400 or 200, texts sometimes localised). That is not a credentials
problem, and every further request prolongs the block (it lifts after 15-30 minutes without
grants), so a throttled grant is asked again at most `retries` times, `retry_delay` seconds
apart, and then the run stops, naming the throttling; later calls of the run do not ask again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Optional

from requests import PreparedRequest
from requests.auth import AuthBase

from .errors import ZohoAuthError, ZohoResponseError, ZohoThrottledError
from .redact import remember
from .settings import TOKEN_EXPIRY_MARGIN
from .transport import RetryingHttp

logger = logging.getLogger(__name__)
THROTTLED = (
    "Zoho's accounts server is throttling token requests for this refresh token (too many in "
    "a short time; this is not a credentials problem): let no run or other client ask for "
    "tokens for about 30 minutes, then run again; nothing from this run was loaded"
)

_GRANT_ADVICE = {
    "invalid_code": (
        "the refresh token is wrong, revoked or expired: generate a new grant token in Zoho's "
        "API console (Self Client) with scopes ZohoCRM.modules.ALL,ZohoCRM.settings.ALL, "
        "exchange it for a refresh token and set sources.zoho_crm.credentials.refresh_token"
    ),
    "invalid_client": (
        "the client id or client secret is wrong, or belongs to another data center: check "
        "sources.zoho_crm.credentials.client_id / client_secret and sources.zoho_crm.data_center"
    ),
}


class ZohoAuth(AuthBase):
    """Signs requests with the run's one access token (`Authorization: Zoho-oauthtoken ...`);
    thread-safe. Pass it as `auth=` per request, never on a session: the grant itself goes
    through the same HTTP client, unsigned."""

    def __init__(
        self,
        accounts_server: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        http: RetryingHttp,
        retries: int = 2,
        retry_delay: float = 15.0,
    ) -> None:
        self.token_url = f"{accounts_server.rstrip('/')}/oauth/v2/token"
        self._form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        remember(client_secret, refresh_token)
        self._http = http
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self.api_domain: Optional[str] = None  # what Zoho says this org's API domain is
        self.expires_at = 0.0  # epoch seconds when Zoho says the token expires
        self._retries, self._retry_delay = retries, retry_delay
        self._throttled = False  # once given up, no call of this run asks again

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = _header(self.token())
        return request

    def token(self) -> str:
        """The current access token, minting a new one when there is none or it is expiring."""
        with self._lock:
            if self._token is None or time.time() >= self._expires_at:
                self._refresh()
            assert self._token is not None
            return self._token

    def refused(self, request: PreparedRequest) -> None:
        """Zoho refused the token `request` carried (401 INVALID_TOKEN): the next `token()`
        mints a new one, unless another thread has already."""
        with self._lock:
            if self._token is not None and request.headers.get("Authorization") == _header(
                self._token
            ):
                self._token = None

    def _refresh(self) -> None:
        if self._throttled:
            raise ZohoThrottledError(THROTTLED)
        for attempt in range(self._retries + 1):
            body = self._grant()
            if "access_token" in body:
                self._take(body)
                return
            if not _throttled(body):
                error = str(body.get("error", "no access token in the answer"))
                advice = next(  # Zoho's code, alone or followed by what the request held
                    (a for code, a in _GRANT_ADVICE.items() if error.split()[:1] == [code]),
                    "check the credentials in sources.zoho_crm",
                )
                raise ZohoAuthError(f"Zoho refused the OAuth grant ({error}): {advice}")
            if attempt < self._retries:
                logger.info(
                    "Zoho is throttling token requests; asking again in %g s", self._retry_delay
                )
                time.sleep(self._retry_delay)
        self._throttled = True
        raise ZohoThrottledError(THROTTLED)

    def _grant(self) -> Dict[str, Any]:
        # Credentials go in the form body, never in the URL, so no log or proxy records them.
        reply = self._http.request("POST", self.token_url, data=self._form)
        if not isinstance(reply.body, dict):
            raise ZohoResponseError(
                f"Zoho's token endpoint {self.token_url} answered HTTP {reply.status} "
                "with a body that is not JSON"
            )
        return reply.body

    def _take(self, body: Dict[str, Any]) -> None:
        self._token = body["access_token"]
        remember(self._token)
        lifetime = token_lifetime(body)
        margin = min(TOKEN_EXPIRY_MARGIN.total_seconds(), lifetime / 2)
        now = time.time()
        self.expires_at = now + lifetime
        self._expires_at = now + lifetime - margin
        self.api_domain = body.get("api_domain") or self.api_domain


def token_lifetime(body: Dict[str, Any]) -> float:
    """Seconds a granted token lives. Zoho's older answers carry `expires_in_sec` (seconds)
    beside `expires_in` in milliseconds; current ones only `expires_in` in seconds."""
    if body.get("expires_in_sec") is not None:
        return float(body["expires_in_sec"])
    return float(body.get("expires_in", 3600))


def _throttled(body: Dict[str, Any]) -> bool:
    """Zoho's answer to too many grants: `status: failure` with "Access Denied" and "too many
    requests" (the texts may be localised, the status is not)."""
    description = str(body.get("error_description", "")).lower()
    return (
        body.get("status") == "failure"
        or body.get("error") == "Access Denied"
        or "too many requests" in description
    )


def _header(token: str) -> str:
    return f"Zoho-oauthtoken {token}"
