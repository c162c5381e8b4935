"""The stand-in's one error type: an error answer in Zoho's JSON shape, raised by a route (or
listed as a fault) and sent as the answer to the request."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional


class ApiError(Exception):
    """An error answer; `envelope` None is the single object, else the key of a list that wraps
    it (`data`, or the endpoint's own key such as `recycle_bin`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[Dict[str, Any]] = None,
        envelope: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.envelope = envelope

    def body(self) -> Dict[str, Any]:
        error = {
            "code": self.code,
            "details": self.details,
            "message": self.message,
            "status": "error",
        }
        return {self.envelope: [error]} if self.envelope else error

    def for_module(self, module: str) -> ApiError:
        """A copy whose details name `module` wherever they say `{module}`."""
        details = json.loads(json.dumps(self.details).replace("{module}", module))
        return ApiError(self.status, self.code, self.message, details, self.envelope)


def json_body(raw: bytes) -> Any:
    """A request's JSON body; 400 INVALID_DATA when it is not JSON."""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "INVALID_DATA", "the body is not JSON") from None


def invalid_url() -> ApiError:
    return ApiError(404, "INVALID_URL_PATTERN", "Please check if the URL is correct")


def invalid_data(message: str) -> ApiError:
    return ApiError(400, "INVALID_DATA", message)
