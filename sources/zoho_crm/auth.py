"""OAuth for Zoho CRM: trade the refresh token for an access token and reuse it until it expires.

Zoho limits how many access tokens a refresh token may hold and how often they are minted, so
one token is shared by every call (and thread) of a run, refreshed only when it is about to
expire or when Zoho answers 401 INVALID_TOKEN.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from dlt.sources.helpers.requests import Client

from sources.zoho_crm.errors import ZohoAuthError, ZohoResponseError
from sources.zoho_crm.settings import TOKEN_EXPIRY_MARGIN

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


class ZohoAuth:
    """Holds one access token for a run; thread-safe."""

    def __init__(
        self,
        accounts_server: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        http: Client,
    ) -> None:
        self.token_url = f"{accounts_server.rstrip('/')}/oauth/v2/token"
        self._form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        self._http = http
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self.api_domain: Optional[str] = None  # what Zoho says this org's API domain is
        self.refreshes = 0

    def token(self) -> str:
        """The current access token, minting a new one when there is none or it is expiring."""
        with self._lock:
            if self._token is None or time.time() >= self._expires_at:
                self._refresh()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Zoho refused `token`: the next `token()` mints a new one (unless another thread did)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _refresh(self) -> None:
        # Credentials go in the form body, never in the URL, so no log or proxy records them.
        response = self._http.post(self.token_url, data=self._form)
        body = _json_or_none(response)
        if body is None:
            raise ZohoResponseError(
                f"Zoho's token endpoint {self.token_url} answered HTTP {response.status_code} "
                "with a body that is not JSON"
            )
        if "access_token" not in body:
            error = str(body.get("error", f"HTTP {response.status_code}"))
            advice = _GRANT_ADVICE.get(error, "check the credentials in sources.zoho_crm")
            raise ZohoAuthError(f"Zoho refused the OAuth grant ({error}): {advice}")
        self._token = body["access_token"]
        lifetime = float(body.get("expires_in", 3600))
        self._expires_at = time.time() + lifetime - TOKEN_EXPIRY_MARGIN.total_seconds()
        self.api_domain = body.get("api_domain") or self.api_domain
        self.refreshes += 1


def _json_or_none(response: Any) -> Optional[dict]:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
