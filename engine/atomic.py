"""Atomic file replacement: write a temporary file beside the target, flush, rename over it.

The temporary name carries the writer's pid (".NAME.PID.RANDOM.cdtmp"), so a later save or open in
the same folder removes what a killed writer left. The target keeps its mode (a new file gets the
umask's default) and a symlink stays a link: its target is what gets replaced.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import time
from pathlib import Path

SUFFIX = ".cdtmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}" + re.escape(SUFFIX) + "$")
STALE_SECONDS = 24 * 3600  # a temporary file this old is abandoned whatever its pid


def _writer_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def clean_stale_temps(folder: str | Path) -> None:
    """Remove temporary files of this module in folder whose writer is dead or that are old."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if _writer_gone(int(match.group(1))) or \
                    now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                os.unlink(entry.path)
        except OSError:
            pass


def writable(path: str | Path) -> bool:
    """Whether this process may write path (opened for writing, nothing written)."""
    try:
        open(path, "r+b").close()
    except OSError:
        return False
    return True


def atomic_replace(path: str | Path, write) -> None:
    """write(tmp_path) into a temporary file beside path's real target, then rename it over; a
    target this process may not write (read-only, immutable) is not replaced behind its back."""
    target = Path(os.path.realpath(path))
    folder = target.parent
    clean_stale_temps(folder)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    if mode is not None and target.is_file() and not writable(target):
        raise PermissionError(errno.EACCES, "the file is read-only (or locked)", str(path))
    tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # umask applies
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        write(str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)  # the rename itself survives a power cut
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_replace(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
