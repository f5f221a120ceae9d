"""An ASGI middleware that refuses request bodies over a byte limit with 413 and a JSON error.

A declared ``Content-Length`` over the limit is refused before any of the body is read; a
chunked body is counted as it streams in and refused as soon as it passes the limit, so an
oversized upload never sits in memory or on disk whole.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodySizeLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# After refusing, read and drop at most this many more bytes so that a client still sending
# can read the answer (closing with unread data makes many clients see a reset instead).
_DRAIN_LIMIT = 64 * 1024 * 1024


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Wrap ``app`` so request bodies over ``max_bytes`` get ``413 {"error": ...}``.

    Example:
        >>> import asyncio
        >>> async def app(scope, receive, send):
        ...     raise AssertionError('not reached')
        >>> sent = []
        >>> async def send(message):
        ...     sent.append(message)
        >>> async def receive():
        ...     return {'type': 'http.request', 'body': b'', 'more_body': False}
        >>> scope = {'type': 'http', 'headers': [(b'content-length', b'2000')]}
        >>> asyncio.run(BodySizeLimit(app, max_bytes=1000)(scope, receive, send))
        >>> sent[0]['status']
        413
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: int | None) -> str:
        limit_mb = self.max_bytes / 2**20
        got = "more" if size is None else f"{size / 2**20:.1f} MB"
        return (
            f"request body too large: {got} sent, the limit is {limit_mb:g} MB "
            "(detforge serve --max-upload-mb)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"error": f"bad Content-Length {value!r}"})
                    return
        if declared is not None and declared > self.max_bytes:
            await _drain(receive, declared)
            await _send_json(send, 413, {"error": self._message(declared)})
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _drain(receive, None)
            await _send_json(send, 413, {"error": self._message(None)})


async def _drain(receive: Receive, declared: int | None) -> None:
    if declared is not None and declared > _DRAIN_LIMIT:
        return
    dropped = 0
    while dropped <= _DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
