"""Atomic file writes: a reader sees the old file or the complete new one, never a half.

``atomic_open`` is the one atomic writer of the package; every file rexforge writes for a user
(tables, reports, plots, checkpoints, heads, exports) goes through it or its two helpers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rexforge.errors import CheckpointError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask can only be read by setting it


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit fsync it, rename it
    over ``path`` and fsync the folder (where the platform allows).

    If anything fails (disk full, interruption, an exception in the ``with`` body) the
    previous file at ``path`` is untouched and the temporary file is removed. An ``OSError``
    (e.g. ENOSPC) becomes a ``CheckpointError`` naming ``path``. A process killed outright
    (SIGKILL) can leave a ``.<name>.*.tmp`` file behind, never a partial ``path``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp_name, 0o666 & ~_UMASK)
    except OSError as exc:
        raise CheckpointError(f"could not write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(
            fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise CheckpointError(f"could not write {path}: {exc.strerror or exc}") from None
        raise
    _sync_directory(path.parent)


def _sync_directory(folder: Path) -> None:
    """fsync ``folder`` so the rename itself survives a power cut (POSIX keeps renames in the
    directory's metadata). Windows cannot open a directory and some file systems refuse to
    sync one: the file is already complete and in place then, so that is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename over ``path``
    (see ``atomic_open``)."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
