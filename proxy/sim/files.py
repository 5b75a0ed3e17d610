"""`/v1/files`: multipart upload, list, retrieve, content, delete."""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from aiohttp import web

from .errors import APIError, bad_request, invalid_value, missing
from .runtime import STATE

PURPOSES = ("fine-tune", "assistants", "batch", "vision", "user_data", "evals")
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 22) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def public(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if not k.startswith("_")}


def add_file(state, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
    """Store a file (also used for fine-tuning result files) and return its metadata."""
    meta = {
        "id": new_id("file-"),
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }
    state.put_file(meta, content)
    return meta


async def upload(request: web.Request) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        raise bad_request(
            "Files are uploaded as multipart/form-data with fields 'file' and 'purpose'; "
            f"got Content-Type {request.content_type!r}."
        )
    form = await request.post()
    purpose = form.get("purpose")
    if not purpose:
        raise missing("purpose")
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        raise invalid_value("purpose", f"{purpose!r}. Supported values are: {', '.join(repr(p) for p in PURPOSES)}.")
    field = form.get("file")
    if field is None:
        raise missing("file")
    if not isinstance(field, web.FileField):
        raise bad_request("'file' must be a file part (with a filename), not a plain form field.", "file", "invalid_type")
    content = field.file.read()
    if not content:
        raise bad_request(f"The uploaded file {field.filename!r} is empty.", "file", "empty_file")
    meta = add_file(request.app[STATE], field.filename or "upload", str(purpose), content)
    return web.json_response(public(meta))


def get_meta(request: web.Request) -> dict[str, Any]:
    file_id = request.match_info["file_id"]
    meta = request.app[STATE].files.get(file_id)
    if meta is None:
        raise APIError(404, f"No such File object: {file_id}", param="id", code=None)
    return meta


async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(public(get_meta(request)))


async def content(request: web.Request) -> web.Response:
    meta = get_meta(request)
    body = request.app[STATE].file_content(meta["id"]) or b""
    return web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{meta["filename"]}"'},
    )


async def delete(request: web.Request) -> web.Response:
    meta = get_meta(request)
    request.app[STATE].delete_file(meta["id"])
    return web.json_response({"id": meta["id"], "object": "file", "deleted": True})


async def list_files(request: web.Request) -> web.Response:
    query = request.query
    items = sorted(request.app[STATE].files.values(), key=lambda m: m["created_at"], reverse=query.get("order", "desc") != "asc")
    if "purpose" in query:
        items = [m for m in items if m["purpose"] == query["purpose"]]
    page, has_more = paginate(items, query, default_limit=10000, max_limit=10000)
    return web.json_response(
        {
            "object": "list",
            "data": [public(m) for m in page],
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": has_more,
        }
    )


def paginate(items: list[dict[str, Any]], query, default_limit: int, max_limit: int = 100) -> tuple[list[dict[str, Any]], bool]:
    """Cursor pagination as upstream: items after the one whose id is `after`, at most `limit`."""
    raw = query.get("limit")
    try:
        limit = int(raw) if raw is not None else default_limit
    except ValueError:
        raise invalid_value("limit", f"'{raw}' is not an integer.") from None
    if not 1 <= limit <= max_limit:
        raise invalid_value("limit", f"expected a value between 1 and {max_limit}, but got {limit} instead.")
    after = query.get("after")
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise invalid_value("after", f"no item with id '{after}' in this list.")
        items = items[ids.index(after) + 1 :]
    return items[:limit], len(items) > limit


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/files", upload)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{file_id}", retrieve)
    app.router.add_get("/v1/files/{file_id}/content", content)
    app.router.add_delete("/v1/files/{file_id}", delete)
