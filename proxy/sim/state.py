"""The simulator's durable state: uploaded files, fine-tuning jobs, fine-tuned models, and the
Responses API answers it gave (so a request can continue one with `previous_response_id`).

Kept in memory; with a state directory it is also written to disk after every change
(`state.json`, one blob per file under `files/`, one conversation per response under `responses/`),
each write atomic (temp file + os.replace), so a restart finds everything and a crash never leaves a
half-written file. Only the latest MAX_RESPONSES responses are kept, in memory and on disk.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pytest_seedreplay.core.atomic import write_atomically

STATE_FILE = "state.json"
STATE_FORMAT = 1
MAX_RESPONSES = 10_000
RESPONSE_ID = re.compile(r"resp_[0-9a-f]{1,64}")  # what the simulator hands out; nothing else names a file


class SimState:
    def __init__(self, state_dir: str | Path | None = None):
        self.dir = Path(state_dir) if state_dir else None
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self._blobs: dict[str, bytes] = {}
        # response id -> the conversation it ends (input and output items); None: on disk, not read yet
        self._responses: OrderedDict[str, list[dict[str, Any]] | None] = OrderedDict()
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "files").mkdir(exist_ok=True)
            (self.dir / "responses").mkdir(exist_ok=True)
            self._load()

    # ------------------------------------------------------------ files

    def put_file(self, meta: dict[str, Any], content: bytes) -> None:
        if self.dir is not None:
            write_atomically(self.dir / "files" / meta["id"], content)
        self._blobs[meta["id"]] = content
        self.files[meta["id"]] = meta
        self.save()

    def file_content(self, file_id: str) -> bytes | None:
        if file_id not in self.files:
            return None
        if file_id not in self._blobs and self.dir is not None:
            path = self.dir / "files" / file_id
            self._blobs[file_id] = path.read_bytes() if path.exists() else b""
        return self._blobs.get(file_id, b"")

    def delete_file(self, file_id: str) -> None:
        self.files.pop(file_id, None)
        self._blobs.pop(file_id, None)
        if self.dir is not None:
            (self.dir / "files" / file_id).unlink(missing_ok=True)
        self.save()

    # ------------------------------------------------------------ responses

    def remember_response(self, response_id: str, items: list[dict[str, Any]]) -> None:
        """Keep the conversation a response ends, for a later `previous_response_id`."""
        if self.dir is not None:
            write_atomically(self._response_path(response_id), json.dumps(items, ensure_ascii=False).encode())
        self._responses[response_id] = items
        self._responses.move_to_end(response_id)
        while len(self._responses) > MAX_RESPONSES:
            oldest, _ = self._responses.popitem(last=False)
            if self.dir is not None:
                self._response_path(oldest).unlink(missing_ok=True)

    def response_items(self, response_id: str) -> list[dict[str, Any]] | None:
        """The conversation a response this simulator gave ends, or None if it has none by that id."""
        if not isinstance(response_id, str) or not RESPONSE_ID.fullmatch(response_id) or response_id not in self._responses:
            return None
        items = self._responses[response_id]
        if items is None and self.dir is not None:
            try:
                items = json.loads(self._response_path(response_id).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None
            self._responses[response_id] = items
        return items

    def _response_path(self, response_id: str) -> Path:
        assert self.dir is not None
        return self.dir / "responses" / f"{response_id}.json"

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        if self.dir is None:
            return
        data = {"format": STATE_FORMAT, "files": self.files, "jobs": self.jobs, "models": self.models}
        write_atomically(self.dir / STATE_FILE, json.dumps(data, ensure_ascii=False, indent=1).encode())

    def _load(self) -> None:
        assert self.dir is not None
        self._load_responses()
        path = self.dir / STATE_FILE
        if not path.exists():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"cannot read simulator state {path}: {exc}; move it away to start fresh") from exc
        self.files = data.get("files", {})
        self.jobs = data.get("jobs", {})
        self.models = data.get("models", {})

    def _load_responses(self) -> None:
        assert self.dir is not None
        paths = sorted(self.dir.glob("responses/resp_*.json"), key=lambda p: p.stat().st_mtime)
        for path in paths[-MAX_RESPONSES:]:
            self._responses[path.stem] = None
        for path in paths[:-MAX_RESPONSES]:
            path.unlink(missing_ok=True)
