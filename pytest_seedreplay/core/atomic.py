"""Writing a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

# Asked of open(): the kernel takes the umask off, as for any file a program creates (0644 under 022).
_NEW_FILE_MODE = 0o666


def write_atomically(path: Path, content: bytes) -> None:
    """Temp file in the same directory, fsynced, then os.replace; parent directories are created.

    The file gets the permissions a plain `open(path, "w")` would give it: those of the file it
    replaces, else the umask's (tempfile.mkstemp's 0600 would hide a shared cache or a CI artifact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            _keep_mode(handle.fileno(), path)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temp_file(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, _NEW_FILE_MODE), tmp
        except FileExistsError:
            continue  # another writer's temp file by that name: draw again


def _keep_mode(fd: int, path: Path) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return  # a new file: the umask has had its say
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
