"""Errors as each API spells them: OpenAI's ``{"error": {...}}`` under /v1, LibreTranslate's
``{"error": "..."}`` elsewhere. Nothing reaches a client as a traceback or a bare 500 page."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import BaylingError, Cancelled, ContextOverflowError, UsageError

log = logging.getLogger("bayling_local.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_overloaded",
}


class APIError(Exception):
    """An answer other than success, with what the client needs to act on it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def busy(retry_after: int = 1) -> APIError:
    return APIError(
        503,
        "the server is busy: every slot and queue place is taken; retry shortly",
        code="server_busy",
        headers={"Retry-After": str(retry_after)},
    )


def from_bayling(exc: BaylingError, *, param: str | None = None) -> APIError:
    """A library error (bad language, text too long ...) as a client error."""
    if isinstance(exc, Cancelled):
        return APIError(
            503, "the server is shutting down", code="shutting_down", headers={"Retry-After": "5"}
        )
    if isinstance(exc, ContextOverflowError):
        return APIError(400, exc.message, code="context_length_exceeded", param=param)
    if isinstance(exc, UsageError):
        return APIError(400, exc.message, param=param)
    return APIError(500, exc.message)


def is_openai_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_body(path: str, error: APIError) -> dict[str, Any]:
    if is_openai_path(path):
        return {
            "error": {
                "message": error.message,
                "type": _TYPES.get(error.status, "server_error"),
                "param": error.param,
                "code": error.code,
            }
        }
    return {"error": error.message}


def error_response(path: str, error: APIError) -> JSONResponse:
    return JSONResponse(error_body(path, error), status_code=error.status, headers=error.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    message = first.get("msg", "invalid value")
    return (f"{param}: {message}" if param else message), param


def install_handlers(app: FastAPI) -> None:
    """Map every failure to the right API's error shape."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(request.url.path, exc)

    @app.exception_handler(BaylingError)
    async def _bayling_error(request: Request, exc: BaylingError) -> JSONResponse:
        return error_response(request.url.path, from_bayling(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(request.url.path, APIError(400, message, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(
            request.url.path,
            APIError(exc.status_code, message, headers=dict(exc.headers or {})),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(
            request.url.path, APIError(500, "internal error; the server log has the details")
        )
