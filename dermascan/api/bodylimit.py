"""``BodyLimit``: refuse an oversized request body with 413 before the app reads or parses any of it.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read. A body without
one (chunked) is counted as the app reads it and cut off at the limit, never buffered here. Limits are
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
        # Counted as it streams, never buffered: past the limit the app is told the client left, its own answer
        # to that is dropped, and the 413 goes out instead.
        state = {"total": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            if state["exceeded"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["total"] += len(message.get("body", b""))
                if state["total"] > limit:
                    state["exceeded"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._refuse(send)

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
