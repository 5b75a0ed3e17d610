"""The simulator's durable state: uploaded files, fine-tuning jobs and fine-tuned models.

Kept in memory; with a state directory it is also written to disk after every change
(`state.json` plus one blob per file under `files/`), each write atomic (temp file + os.replace),
so a restart finds everything and a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_seedreplay.core.atomic import write_atomically

STATE_FILE = "state.json"
STATE_FORMAT = 1


class SimState:
    def __init__(self, state_dir: str | Path | None = None):
        self.dir = Path(state_dir) if state_dir else None
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self._blobs: dict[str, bytes] = {}
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "files").mkdir(exist_ok=True)
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

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        if self.dir is None:
            return
        data = {"format": STATE_FORMAT, "files": self.files, "jobs": self.jobs, "models": self.models}
        write_atomically(self.dir / STATE_FILE, json.dumps(data, ensure_ascii=False, indent=1).encode())

    def _load(self) -> None:
        assert self.dir is not None
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

