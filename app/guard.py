"""Refuse file references that name anything but a visitor's own upload, before Gradio sees them.

Gradio's API routes accept a file as ``{"path": ..., "meta": {"_type": "gradio.FileData"}}``
and, for ``gr.api`` endpoints, copy that path into its cache and hand the function the copy and
a download URL, whatever the endpoint's declared types: a server file (or ``/dev/zero``, or a
URL to fetch) in any argument. Measured on Gradio 6.31 (docs/SECURITY.md). This ASGI middleware
reads each JSON request body and refuses, with HTTP 403, any such reference whose path is not
inside Gradio's upload folder, where ``/gradio_api/upload`` puts what a browser or
``gradio_client.handle_file`` uploads. Bodies over a size limit are refused with 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_JSON_BODY_BYTES = 16 * 2**20  # texts and specs are capped far below this (core.limits)


def upload_folder() -> Path:
    """Where Gradio stores uploaded files (``GRADIO_TEMP_DIR``, default ``<tmp>/gradio``)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def foreign_file_refs(value: Any, allowed: Path) -> list[str]:
    """The ``path`` of every file reference in ``value`` that is not under ``allowed``."""
    found: list[str] = []
    if isinstance(value, dict):
        meta = value.get("meta")
        if (isinstance(meta, dict) and meta.get("_type") == "gradio.FileData") or (
                "path" in value and ("orig_name" in value or "meta" in value)):
            path = value.get("path")
            if not isinstance(path, str) or not _inside(path, allowed):
                found.append(str(path))
        for item in value.values():
            found += foreign_file_refs(item, allowed)
    elif isinstance(value, list):
        for item in value:
            found += foreign_file_refs(item, allowed)
    return found


def _inside(path: str, folder: Path) -> bool:
    if "://" in path or path.startswith("data:"):
        return False
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


class FileReferenceGuard:
    """ASGI middleware: JSON bodies may refer only to files uploaded to this app."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_JSON_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _refuse(send, 413, f"request body over {self.max_body_bytes:,} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            payload = json.loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None  # not ours to judge: Gradio answers malformed JSON itself
        if payload is not None and foreign_file_refs(payload, upload_folder()):
            await _refuse(send, 403, "file references must name files uploaded to this app")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_json(scope: Scope) -> bool:
    """JSON, or no content type at all (FastAPI parses such a body as JSON too)."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower() or not value.strip()
    return True


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
