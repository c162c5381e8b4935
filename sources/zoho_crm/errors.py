"""Errors a run can end with. Every message is one line a user can act on, and none carries a
secret: each message passes `redact` when the error is made, so what Zoho echoed (a token form,
an Authorization header) is masked before dlt's trace, a log or the `runs` table sees it."""

from __future__ import annotations

from typing import Any, Optional

from .redact import redact

# Zoho codes that mean "this user/token may not read this module": the run goes on with the
# other modules and then fails, naming the module.
PERMISSION_CODES = frozenset({"NO_PERMISSION", "OAUTH_SCOPE_MISMATCH", "AUTHORIZATION_FAILED"})


class ZohoError(Exception):
    """Base of every error this source raises on purpose; its message is redacted."""

    def __init__(self, message: Any = "", *args: Any) -> None:
        super().__init__(redact(message), *args)


class ZohoConfigError(ZohoError):
    """A configuration value is wrong; the message names it and the accepted values."""


class ZohoAuthError(ZohoError):
    """Zoho refused the OAuth grant (wrong client, wrong or revoked refresh token)."""


class ZohoThrottledError(ZohoError):
    """Zoho's accounts server throttles refresh-token grants; it lifts after a quiet while."""


class ZohoApiError(ZohoError):
    """Zoho answered an API call with its error JSON (or with an unexpected status)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        endpoint: str,
        module: Optional[str] = None,
    ) -> None:
        self.status, self.code, self.endpoint, self.module = status, code, endpoint, module
        where = f" (module {module})" if module else ""
        super().__init__(f"Zoho answered HTTP {status} {code} on {endpoint}{where}: {message}")

    @property
    def is_permission(self) -> bool:
        return self.code in PERMISSION_CODES


class ZohoResponseError(ZohoError):
    """Zoho (or a proxy before it) kept answering with something that is not Zoho's JSON."""


class ZohoMalformedError(ZohoResponseError):
    """A list page that is Zoho's JSON but not the shape of a list: `data` not a list, or no
    way to tell whether more pages follow. The module fails; the others go on."""

    def __init__(self, endpoint: str, module: Optional[str], what: str) -> None:
        self.endpoint, self.module = endpoint, module
        where = f" (module {module})" if module else ""
        super().__init__(
            f"Zoho answered {endpoint}{where} with a malformed page: {what}; nothing past it "
            "was loaded, the next run reads on from there"
        )
