"""The stand-in's OAuth: the refresh-token grant of `POST /oauth/v2/token`, and the access
tokens it issued, which every API call must carry (`Authorization: Zoho-oauthtoken ...`)."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Dict, List, Optional

from zoho_standin.errors import ApiError

CLIENT_ID = "1000.STANDINCLIENT"
CLIENT_SECRET = "standin-client-secret-7f3a9c"
REFRESH_TOKEN = "1000.standin-refresh-token-51d2e8"
TOKEN_PATH = "/oauth/v2/token"


class TokenDesk:
    """Grants access tokens for one client and refresh token, and checks them."""

    def __init__(
        self, client_id: str, client_secret: str, refresh_token: str, lifetime: int
    ) -> None:
        self.client_id, self.client_secret, self.refresh_token = (
            client_id,
            client_secret,
            refresh_token,
        )
        self.lifetime = lifetime
        self._tokens: Dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._lock = threading.Lock()

    def grant(
        self, form: Dict[str, str], api_domain: str, old_form: bool = False
    ) -> Dict[str, Any]:
        """A refresh-token grant; `old_form` answers as Zoho once did (`expires_in` in ms).
        Zoho answers a refused grant with HTTP 200 and an "error" key, as this does."""
        if form.get("grant_type") != "refresh_token":
            return {"error": "unsupported_grant_type"}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return {"error": "invalid_client"}
        if form.get("refresh_token") != self.refresh_token:
            return {"error": "invalid_code"}
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self._lock:
            self._tokens[token] = time.time() + self.lifetime
        answer: Dict[str, Any] = {
            "access_token": token,
            "api_domain": api_domain,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        }
        if old_form:
            answer.update(expires_in_sec=self.lifetime, expires_in=self.lifetime * 1000)
        return answer

    def check(self, header: Optional[str]) -> None:
        """Raise 401 INVALID_TOKEN unless `header` carries a token issued here and not expired."""
        token = (header or "").removeprefix("Zoho-oauthtoken ").strip()
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.time():
            raise ApiError(401, "INVALID_TOKEN", "invalid oauth token")

    def issued(self) -> List[str]:
        with self._lock:
            return list(self._tokens)

    def expire_all(self) -> None:
        with self._lock:
            self._tokens = {token: 0.0 for token in self._tokens}
