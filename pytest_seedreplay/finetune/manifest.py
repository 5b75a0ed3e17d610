"""The manifest `cassettes/finetunes.json`: every fine-tune of this cache, one numbered version each.

A version says what the model was trained from (the dataset's sha256, its example count, the
recordings it was exported from) and how to ask it (model, seed, provider base URL), so the cache
survives the model: the recordings and this file can rebuild it elsewhere. Never a key. The file
carries a schema version; it is replaced atomically, so a reader sees the old manifest or the new.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..core.atomic import write_atomically
from ..core.constants import DEFAULT_CASSETTE_DIR, FINETUNE_MANIFEST
from ..core.redact import find_secret

MANIFEST_VERSION = 1
DEFAULT_MANIFEST = Path(DEFAULT_CASSETTE_DIR) / FINETUNE_MANIFEST
_VERSION_SPEC = re.compile(r"^v?(\d+)$")


class ManifestError(ValueError):
    """The manifest cannot be read or written, or names no such version; the message says what to do."""


@dataclass
class Version:
    """One fine-tune of the cache."""

    version: int
    created: str
    base_model: str
    fine_tuned_model: str
    seed: int
    job_id: str
    training_file: str
    dataset_sha256: str | None  # None only for a job seedreplay did not start (`status` of a foreign job)
    examples: int | None
    dataset: str | None = None  # the training JSONL, relative to the manifest's folder when inside the project
    validation_file: str | None = None
    suffix: str | None = None
    epochs: int | None = None
    trained_tokens: int | None = None
    base_url: str = ""
    exported_from: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Version:
        """The version `data` describes; ManifestError naming the first field of the wrong type."""
        if not isinstance(data, dict):
            raise ManifestError(f"a version is a JSON object, not {type(data).__name__}")
        fields = {k: v for k, v in data.items() if k in _FIELD_TYPES}
        missing = [name for name in _REQUIRED if name not in fields]
        if missing:
            raise ManifestError(f"a version has no {', '.join(missing)}")
        for name, value in fields.items():
            kinds, optional = _FIELD_TYPES[name]
            if not (value is None and optional) and not (isinstance(value, kinds) and not isinstance(value, bool)):
                wanted = " or ".join(k.__name__ for k in kinds) + (" or null" if optional else "")
                raise ManifestError(f"its {name!r} is {json.dumps(value)[:40]}, not {wanted}")
        return cls(**fields)


# Each field's JSON type (int, str, dict) and whether null is allowed: a hand-edited or planted manifest
# must fail here, with the field named, not later as a TypeError where the value is used.
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "version": ((int,), False),
    "created": ((str,), False),
    "base_model": ((str,), False),
    "fine_tuned_model": ((str,), False),
    "seed": ((int,), False),
    "job_id": ((str,), False),
    "training_file": ((str,), False),
    "dataset_sha256": ((str,), True),
    "examples": ((int,), True),
    "dataset": ((str,), True),
    "validation_file": ((str,), True),
    "suffix": ((str,), True),
    "epochs": ((int,), True),
    "trained_tokens": ((int,), True),
    "base_url": ((str,), False),
    "exported_from": ((dict,), True),
}
_REQUIRED = tuple(f.name for f in dataclasses.fields(Version) if f.default is dataclasses.MISSING)


def public_base_url(url: str) -> str:
    """A base URL safe to write down: no user or password, no query string (some gateways take a key there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class Manifest:
    """The versions in one manifest file (none when the file does not exist yet)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_MANIFEST):
        self.path = Path(path)
        self.versions: list[Version] = self._read()

    def _read(self) -> list[Version]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read the manifest {self.path}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"the manifest {self.path} is not JSON ({exc.msg} at line {exc.lineno}); restore it from version control"
            ) from None
        except RecursionError:
            raise ManifestError(
                f"the manifest {self.path} nests deeper than any manifest does; restore it from version control"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
            raise ManifestError(f"{self.path} is not a seedreplay fine-tune manifest (no 'versions' list)")
        schema = data.get("seedreplay_finetunes")
        if not isinstance(schema, int) or schema > MANIFEST_VERSION:
            raise ManifestError(
                f"{self.path} uses manifest schema {schema!r}, written by a newer seedreplay; "
                "upgrade seedreplay: pip install -U pytest-seedreplay"
            )
        versions = []
        for number, item in enumerate(data["versions"], start=1):
            try:
                versions.append(Version.from_dict(item))
            except ManifestError as exc:
                raise ManifestError(
                    f"{self.path}: entry {number} of 'versions' cannot be read: {exc}; fix it or restore the file"
                ) from None
        return versions

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def find(self, spec: str = "latest") -> Version:
        """A version by `latest`, its number (`3`, `v3`), its fine-tuned model or its job id."""
        if not self.versions:
            raise ManifestError(f"no fine-tune recorded in {self.path} yet; run `seedreplay finetune create` first")
        if spec in ("", "latest"):
            return self.versions[-1]
        number = _VERSION_SPEC.match(spec)
        for version in self.versions:
            if (number and version.version == int(number.group(1))) or spec in (version.fine_tuned_model, version.job_id):
                return version
        known = ", ".join(v.label for v in self.versions)
        raise ManifestError(f"no version {spec!r} in {self.path} (it has {known}); name one by number, model or job id")

    def same_dataset(self, sha: str, base_model: str) -> Version | None:
        """The newest version trained on this very dataset for this base model."""
        return next((v for v in reversed(self.versions) if v.dataset_sha256 == sha and v.base_model == base_model), None)

    def dataset_path(self, version: Version) -> Path | None:
        if version.dataset is None:
            return None
        path = Path(version.dataset)
        return path if path.is_absolute() else self.path.parent / path

    def relative(self, dataset: Path) -> str:
        """How a dataset path is written down: relative to the manifest's folder when it can be."""
        try:
            return os.path.relpath(dataset.resolve(), self.path.parent.resolve()).replace(os.sep, "/")
        except ValueError:  # another drive on Windows
            return str(dataset.resolve())

    def append(self, fields: dict[str, Any]) -> Version:
        """Add the next version and write the manifest; a record holding a key-shaped string is refused."""
        fields = {**fields, "version": max((v.version for v in self.versions), default=0) + 1}
        version = Version.from_dict(fields)
        where = find_secret(version.to_dict(), "version")
        if where:
            raise ManifestError(f"refused to write an API-key-shaped string into {self.path} (at {where})")
        self.versions.append(version)
        self.save()
        return version

    def save(self) -> None:
        document = {"seedreplay_finetunes": MANIFEST_VERSION, "versions": [v.to_dict() for v in self.versions]}
        try:
            write_atomically(self.path, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        except OSError as exc:
            raise ManifestError(f"cannot write the manifest {self.path}: {exc.strerror or exc}") from None
