"""Writing what the user keeps (models, checkpoints, CSVs, reports, caches) so that it is never lost
or half-written: a unique temporary file beside the target, flushed to disk, then renamed over it;
and a lock so that two runs never write the same output at once.

Every problem becomes an `OutputError` whose message is one line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
STALE_TEMP_SECONDS = 3600.0  # a temporary file this old belongs to no live run (writes take seconds)


class OutputError(Exception):
    """An output that cannot be written; the message names the file and the reason."""


class OutputBusyError(OutputError):
    """Another run is writing the same output."""


def describe_os_error(path: str | os.PathLike, err: OSError) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno == errno.ENOSPC:
        reason = "no space left on the disk"
    elif err.errno == errno.ENOENT:
        reason = "the folder does not exist"
    return f"{os.fsdecode(path)}: cannot write ({reason.lower()})"


def _umask_mode(base: int = 0o666) -> int:
    """The permissions a plain `open()` would give a new file (mkstemp always gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def is_special_file(path: str | os.PathLike) -> bool:
    """A device, pipe or socket (`-o /dev/stdout`): written in place, never replaced by a rename."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_writable(path: str | os.PathLike, kind: str = "file") -> None:
    """Fail now, before any compute is spent, when `path` could not be written later:
    its folder is missing or read-only, or a folder (for a file) or file (for a folder) is in the way."""
    path = Path(path)
    folder = Path(os.path.abspath(path)).parent  # `.` has no name of its own
    if kind == "file" and path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file; give a folder name")
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot write (the folder {folder} does not exist)")
    if is_special_file(path):
        return
    # a folder's files are staged beside it and renamed into it: both places must take new files
    for place in (folder, path) if kind == "folder" and path.is_dir() else (folder,):
        try:  # access() says yes to root even on a read-only disk: try for real
            handle, probe = tempfile.mkstemp(prefix=".speech-app-probe.", suffix=TEMP_SUFFIX, dir=place)
        except OSError as err:
            raise OutputError(describe_os_error(path, err)) from None
        os.close(handle)
        os.unlink(probe)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` (with the umask's permissions)
    when the block ends without an exception, removed otherwise. The caller flushes its own file."""
    path = Path(path)
    if is_special_file(path):
        try:
            yield path
        except OSError as err:
            raise OutputError(describe_os_error(path, err)) from None
        return
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise OutputError(describe_os_error(path, err)) from None
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(describe_os_error(path, err)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator:
    """An open file that becomes `path` only when complete (flushed and fsynced first)."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            if tmp != path:  # a device or pipe written in place cannot (and need not) be synced
                os.fsync(handle.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (a crash right after it must not bring the old file back)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(handle)


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(os.path.abspath(path))  # `.` has no name of its own
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; another holder makes this raise OutputBusyError.

    The lock is a hidden `.<name>.lock` file beside the output, removed on release. The kernel
    drops the lock if the process dies (even by kill -9), so a crash never leaves a stale lock."""
    path = Path(path)
    if is_special_file(path):  # `-o /dev/null`: nothing to protect, and no lock file in /dev
        yield
        return
    lock = lock_path(path)
    while True:
        try:
            handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(describe_os_error(path, err)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise OutputBusyError(f"{path}: another speech-app run is writing this output; "
                                  f"wait for it to finish or choose another name") from None
        try:  # the previous holder may have removed the file between our open and our lock
            if os.fstat(handle).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(handle)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(handle)


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary folder beside `target` to fill; `swap_in()` later puts it in place of `target`.
    Removed if the block fails, so a failed run leaves `target` as it was."""
    target = Path(os.path.abspath(target))  # `.` has no name of its own
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent))
    except OSError as err:
        raise OutputError(describe_os_error(target, err)) from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def swap_in_folder(staging: Path, target: str | os.PathLike, owned_patterns: tuple[str, ...] = ()) -> None:
    """Move the files of the filled `staging` folder into `target` (created if missing), each by a
    rename, then remove files of an earlier run that match `owned_patterns` and were not written
    again. Anything else in `target` is the user's and stays: a report folder may be `.` or `~`."""
    target = Path(target)
    names = sorted(entry.name for entry in staging.iterdir())
    try:
        target.mkdir(exist_ok=True)
        for name in names:
            os.replace(staging / name, target / name)
        for pattern in owned_patterns:
            for old in target.glob(pattern):
                if old.name not in names and old.is_file():
                    old.unlink()
    except OSError as err:
        raise OutputError(describe_os_error(target, err)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _sync_folder(target)


def remove_stale_temporaries(folder: str | os.PathLike, patterns: tuple[str, ...], max_age_s: float,
                             now: float | None = None) -> list[Path]:
    """Delete files matching `patterns` in `folder` older than `max_age_s` (left by killed runs);
    younger ones may belong to a run writing right now. Returns what was removed."""
    import time

    now = time.time() if now is None else now
    removed = []
    for pattern in patterns:
        for candidate in Path(folder).glob(pattern):
            try:
                if now - candidate.stat().st_mtime > max_age_s and candidate.is_file():
                    candidate.unlink()
                    removed.append(candidate)
            except OSError:
                continue  # gone already, or not ours to delete
    return removed
