"""``BodyLimit``: refuse an oversized request body with 413 before the app reads or parses any of it.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read. A body without
one (chunked) is read here up to the limit, never further, and only then handed to the app. Limits are
per path, so the small JSON endpoints cannot be used to upload megabytes either.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 64 * 1024  # JSON bodies (decisions) and anything not listed


class BodyLimit:
    """ASGI middleware: ``limits`` maps a path to its byte limit (others: ``default``); ``message`` is the 413's."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int = DEFAULT_LIMIT, *, message: str):
        self.app, self.limits, self.default, self.message = app, dict(limits), int(default), message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send)
            return
        messages: list[Message] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)  # a disconnect: let the app see it
                break
            total += len(message.get("body", b""))
            if total > limit:
                await self._refuse(send)
                return
            messages.append(message)
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            message = next(replay, None)
            return message if message is not None else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self.message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
