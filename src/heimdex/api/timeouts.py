"""Slow request bodies: a client that declares a body and then sends nothing (or trickles it) would
hold a connection, a task and, for uploads, a temporary file forever. Each chunk of the body must
arrive within `request_body_timeout_s` of the previous one, or the request ends with a 408."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTimeout(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            408,
            f"the request body stopped arriving (nothing for {timeout_s:g} s); send it again",
            headers={"Connection": "close"},
        )


class BodyTimeoutMiddleware:
    """Wraps `receive`: while the body is incomplete and no response has started, each wait for the
    next chunk is bounded. Afterwards `receive` is left alone (it then only reports a disconnect,
    which a streaming response legitimately waits for as long as it streams)."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.timeout_s:
            await self.app(scope, receive, send)
            return
        state = {"body_done": False, "responding": False}

        async def timed_receive() -> Message:
            if state["body_done"] or state["responding"]:
                return await receive()
            try:
                # Not wait_for: its separate task would swallow a message that arrives just as the
                # caller is cancelled (Request.is_disconnected() polls receive in a cancelled scope).
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["responding"] = True
            await send(message)

        await self.app(scope, timed_receive, watched_send)
