"""The one store behind every feature: a few verbs (`base`) over diskcache (`disk`) or Redis
(`redis`), entries packed by `codec`; `open_store` picks the backend a location names."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from ..core.constants import DEFAULT_CACHE_DIR, ENV_STORE
from .base import (
    _SCHEME,
    ACCEPTED_STORES,
    REDIS_SCHEMES,
    CheckedWrites,
    CorruptEntry,
    EntryFormatError,
    Store,
    StoreBusy,
    StoreError,
    StoreStats,
    StoreUnavailable,
    check_namespace,
    check_no_secret,
    display_location,
)

if TYPE_CHECKING:
    from .disk import DiskStore

__all__ = [
    "CheckedWrites",
    "CorruptEntry",
    "DiskStore",
    "EntryFormatError",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreStats",
    "StoreUnavailable",
    "check_namespace",
    "check_no_secret",
    "display_location",
    "open_store",
    "store_at",
    "store_target",
]


def store_at(target: str | os.PathLike[str], namespace: str | None = None) -> Store:
    """The store a `--cache-dir`/`--store`/`SEEDREPLAY_STORE` value names: a directory or a URL.
    `namespace` (`--namespace`) wins over a URL's `?namespace=`: one team's or project's recordings,
    apart from the others' on the same Redis or directory."""
    target = os.fspath(target)
    if namespace is not None:
        check_namespace(namespace)
    match = _SCHEME.match(target)
    if match is None:
        if not target.strip():
            raise StoreError(f"empty store location; accepted: {ACCEPTED_STORES}")
        from .disk import DiskStore

        return DiskStore(target, namespace)
    scheme = match.group(1).lower()
    if scheme in REDIS_SCHEMES:
        from .redis import RedisStore  # imported here: redis is an optional dependency

        return RedisStore(target, namespace=namespace)
    if scheme == "file":
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"cannot use {target!r}: file:// stores must be local (file:///path)")
        from .disk import DiskStore

        named = dict(parse_qsl(parts.query)).get("namespace") or None
        return DiskStore(parts.path, namespace or named)
    raise StoreError(f"unknown store {display_location(target)!r} (scheme {scheme}://); accepted: {ACCEPTED_STORES}")


def store_target(cache_dir: str | None = None, store_url: str | None = None) -> str:
    """What `--store URL`, else `--cache-dir`, else $SEEDREPLAY_STORE, else the default dir names."""
    return store_url or cache_dir or os.environ.get(ENV_STORE) or DEFAULT_CACHE_DIR


def open_store(cache_dir: str | None = None, store_url: str | None = None, namespace: str | None = None) -> Store:
    """The store the flags (or $SEEDREPLAY_STORE, or the default dir) name, in `namespace` if given."""
    return store_at(store_target(cache_dir, store_url), namespace)


def __getattr__(name: str) -> object:
    # DiskStore brings diskcache and sqlite3: imported when first asked for, not with the package
    # (the pytest plugin reads cassettes, which need neither).
    if name == "DiskStore":
        from .disk import DiskStore

        return DiskStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
