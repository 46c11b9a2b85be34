"""The server's guards: the API key and the request size cap.

The key is compared with :func:`hmac.compare_digest`, so the time a wrong guess takes does not
tell how much of it was right. The size cap stops reading a body the moment it is exceeded,
whether the client announced its length or not.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError, error_response


def key_matches(expected: str, supplied: str | None) -> bool:
    if supplied is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), supplied.encode("utf-8"))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_key(request: Request, body_key: str | None = None) -> None:
    """401 unless the request carries the server's key (Bearer header, or LibreTranslate's
    ``api_key`` field)."""
    expected: str | None = request.app.state.config.api_key
    if not expected:
        return
    supplied = bearer_token(request) or body_key
    if not key_matches(expected, supplied):
        message = "a valid API key is required" if supplied is None else "invalid API key"
        raise APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class BodyTooLarge(APIError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than this server accepts ({limit} bytes)",
            code="request_too_large",
        )


class BodyLimit:
    """Refuse request bodies over the cap (``/translate_file`` has its own, larger one)."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_file: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_file = max_file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.max_file if path == "/translate_file" else self.max_body
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length > limit or length < 0:
                    error = (
                        BodyTooLarge(limit)
                        if length > limit
                        else APIError(400, "invalid Content-Length header")
                    )
                    await error_response(path, error)(scope, receive, send)
                    return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
