"""Download and unpack the Google Speech Commands archives, resumably and verified.

Why the care: the v0.02 archive is 2.4 GB on a plain-HTTP server. A dropped connection should
cost only the missing bytes (HTTP Range resume of a `.part` file), a corrupted or tampered
download must never be mistaken for the data set (SHA-256 check before the file gets its final
name), and an archive is untrusted input (members that would land outside the target folder
are refused). Only the standard library's urllib is used, so http://, https:// and file://
(a local mirror) all work without extra dependencies.

Why not pooch (which librosa installs anyway): it verifies checksums, but (pooch 1.9) it starts an
interrupted download over from the first byte, takes no file:// mirror, and before Python 3.12 it
unpacks without checking where members land; those three are most of what this module is for.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from .. import __version__
from ..atomic_files import write_text
from ..messages import one_line

DEFAULT_CHUNK_BYTES = 1024 * 1024  # 1 MiB: large enough for throughput, small for smooth progress
HASH_CHUNK_BYTES = 4 * 1024 * 1024  # 4 MiB reads when hashing a finished file
READ_TIMEOUT_S = 60.0  # a stalled connection fails (and can be resumed) instead of hanging forever
FREE_SPACE_MARGIN_BYTES = 64 * 1024 * 1024  # keep 64 MiB spare so the disk is not filled to the brim
PART_SUFFIX = ".part"
CHECKSUM_SUFFIX = ".sha256"  # where a computed hash is recorded when none was published
EXTRACTED_MARKER = ".speech_app_extracted"  # written last: its presence means extraction finished
EXTRACTED_DIR_MODE = 0o755
USER_AGENT = f"speech-app/{__version__} (+urllib)"
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python 3.12, 3.11.4+, 3.10.12+


class DownloadError(Exception):
    """A download, verification or extraction failed; the message is one line naming the URL/file."""


@dataclass(frozen=True)
class ArchiveInfo:
    url: str
    sha256: str | None  # lowercase hex; None = no published checksum we trust
    size_bytes: int | None


# Checksums are not guessed: v0.02's hash and size are the ones tensorflow/datasets publishes
# (tensorflow_datasets/url_checksums/speech_commands.txt) and torchaudio uses
# (torchaudio/datasets/speechcommands.py, _CHECKSUMS); v0.01's hash is torchaudio's, its size
# the Content-Length download.tensorflow.org sends for it.
DEFAULT_VERSION = "0.02"  # the later release, with more words and speakers
DEFAULT_DEST = Path("data")
SPEECH_COMMANDS = {
    "0.01": ArchiveInfo(
        url="http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
        sha256="743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
        size_bytes=1_489_096_277,
    ),
    "0.02": ArchiveInfo(
        url="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        size_bytes=2_428_923_189,
    ),
}


# --------------------------------------------------------------------------- helpers


def _describe(error: BaseException) -> str:
    """A short reason for an urllib/socket/http.client failure."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return one_line(str(reason) if not isinstance(reason, BaseException) else _describe(reason))
    if isinstance(error, http.client.IncompleteRead):
        return f"connection closed early ({len(error.partial)} bytes of this chunk read)"
    return one_line(error)  # an exception without text gives its type's name


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _target_path(url: str, dest: Path) -> Path:
    """`dest` is the file to write, or an existing folder to put the URL's file name in."""
    dest = Path(dest)
    if dest.is_dir():
        name = PurePosixPath(urllib.parse.urlsplit(url).path).name
        if not name:
            raise DownloadError(f"cannot name the download of {url}: the URL has no file name; pass a file path")
        return dest / name
    return dest


def _check_free_space(folder: Path, needed_bytes: int, url: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed_bytes + FREE_SPACE_MARGIN_BYTES:
        raise DownloadError(
            f"not enough disk space in {folder} for {url}: need {needed_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB free"
        )


# --------------------------------------------------------------------------- fetching


def _content_range(header: str | None) -> tuple[int, int | None] | None:
    """(first byte, total size or None) from `Content-Range: bytes A-B/T`; None if unparsable."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", header or "")
    if not match:
        return None
    return int(match.group(1)), (None if match.group(2) == "*" else int(match.group(2)))


def _open_file_url(url: str, offset: int):
    """file:// needs no Range request: open the file and seek to where the .part ends."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    stream = open(path, "rb")
    total = os.fstat(stream.fileno()).st_size
    start = offset if offset <= total else 0  # a .part longer than the source is junk: start over
    stream.seek(start)
    return stream, start, total


def _open_source(url: str, offset: int):
    """Open `url` for reading from byte `offset`: returns (stream, actual start, total bytes or None).

    The actual start is 0 whenever the server cannot resume (it answers 200, or a Content-Range
    that does not begin at `offset`); the caller then rewrites the .part from scratch.
    """
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        return _open_file_url(url, offset)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=READ_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # "range not satisfiable": the .part is not a prefix; start over
            error.close()
            return _open_source(url, 0)
        raise
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and response.status == 206:
        content_range = _content_range(response.headers.get("Content-Range"))
        if content_range and content_range[0] == offset:
            total = content_range[1] if content_range[1] is not None else (offset + length if length else None)
            return response, offset, total
        response.close()
        return _open_source(url, 0)  # a partial answer for the wrong bytes: do not splice it in
    return response, 0, length


def _fetch(url: str, part: Path, offset: int, size_bytes: int | None, progress: bool, chunk_bytes: int) -> None:
    """Append the rest of `url` to `part` (or rewrite it when the server cannot resume)."""
    try:
        stream, start, total = _open_source(url, offset)
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError/HTTPError are OSErrors
        raise DownloadError(f"cannot download {url}: {_describe(error)}") from None
    if offset and start != offset:
        _warn(f"{url} cannot be resumed at byte {offset}; downloading it again from the start")
    total = total if total is not None else size_bytes
    if total is not None:
        try:
            _check_free_space(part.parent, total - start, url)
        except DownloadError:
            stream.close()
            raise
    with stream, open(part, "ab" if start else "wb") as out, tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
        desc=part.name[: -len(PART_SUFFIX)], file=sys.stderr, disable=not progress, leave=False,
    ) as bar:
        try:
            while chunk := stream.read(chunk_bytes):
                out.write(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as error:
            out.flush()
            raise DownloadError(
                f"download of {url} interrupted after {out.tell()} bytes: {_describe(error)};"
                f" run again to resume from {part}"
            ) from None
    got = part.stat().st_size
    if total is not None and got < total:
        raise DownloadError(f"download of {url} ended early at {got} of {total} bytes; run again to resume from {part}")


# --------------------------------------------------------------------------- download_file


def _existing_is_valid(final: Path, expected: str | None, size_bytes: int | None) -> bool:
    """May an archive already under its final name be reused? (Only verified files get that name.)"""
    if size_bytes is not None and final.stat().st_size != size_bytes:
        _warn(f"{final} has {final.stat().st_size} bytes, expected {size_bytes}; downloading it again")
        return False
    if expected is None:
        return True
    actual = _sha256_of(final)
    if actual != expected:
        _warn(f"{final} has sha256 {actual}, expected {expected}; downloading it again")
        return False
    return True


def _verify(part: Path, url: str, expected: str | None, size_bytes: int | None) -> str:
    """Check size and SHA-256 of the finished .part; a bad one is deleted so a rerun starts clean."""
    got = part.stat().st_size
    if size_bytes is not None and got != size_bytes:
        part.unlink()
        raise DownloadError(f"download of {url} has {got} bytes, expected {size_bytes}; deleted {part}")
    actual = _sha256_of(part)
    if expected is not None and actual != expected:
        part.unlink()
        raise DownloadError(f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; deleted {part}")
    return actual


def download_file(url: str, dest: Path, *, sha256: str | None = None, size_bytes: int | None = None,
                  progress: bool = True, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Path:
    """Download `url` to `dest` (a file path, or an existing folder) and return the file's path.

    Bytes go to `<file>.part` first and are resumed from there after an interruption; the file
    gets its final name (atomically, by os.replace) only once size and SHA-256 match. An existing
    final file whose checksum matches is reused without any network access. Without `sha256`
    the computed hash is printed as a warning and recorded in `<file>.sha256`.
    """
    final = _target_path(url, dest)
    final.parent.mkdir(parents=True, exist_ok=True)
    expected = sha256.strip().lower() if sha256 else None
    if final.is_file() and _existing_is_valid(final, expected, size_bytes):
        return final
    part = final.with_name(final.name + PART_SUFFIX)
    offset = part.stat().st_size if part.is_file() else 0
    if size_bytes is not None and offset > size_bytes:  # longer than the real file: junk
        part.unlink()
        offset = 0
    if size_bytes is None or offset < size_bytes:
        _fetch(url, part, offset, size_bytes, progress, chunk_bytes)
    actual = _verify(part, url, expected, size_bytes)
    os.replace(part, final)
    if expected is None:
        _warn(f"no published checksum for {url}; computed sha256 {actual}, recorded in {final}{CHECKSUM_SUFFIX}")
        write_text(f"{final}{CHECKSUM_SUFFIX}", f"{actual}  {final.name}\n")  # whole or absent
    return final


# --------------------------------------------------------------------------- extraction


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse members that could write outside the extraction folder, whatever Python's tarfile does."""
    name = member.name.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise DownloadError(f"refusing to extract {archive}: member {member.name!r} points outside the destination")
    if member.issym() or member.islnk():
        link = member.linkname.replace("\\", "/")
        base = PurePosixPath(name).parent if member.issym() else PurePosixPath()
        target = os.path.normpath(str(base / link)) if link else ""
        if link.startswith("/") or re.match(r"^[A-Za-z]:", link) or target == ".." or target.startswith("../"):
            raise DownloadError(
                f"refusing to extract {archive}: link {member.name!r} -> {member.linkname!r} points outside the destination"
            )
    elif not (member.isfile() or member.isdir()):
        raise DownloadError(f"refusing to extract {archive}: member {member.name!r} is a device or fifo")


def _checked_members(tar: tarfile.TarFile, archive: Path, bar: tqdm):
    """Stream members in archive order (one pass over the gzip) after checking each one."""
    for member in tar:
        _check_member(member, archive)
        bar.update(1)
        yield member


def _extract_tar(archive: Path, out_dir: Path, marker: dict, progress: bool) -> None:
    """Extract into a temporary sibling folder, then rename it to `out_dir`: never a half folder."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar, tqdm(
            unit=" files", desc=f"extracting {archive.name}", file=sys.stderr, disable=not progress, leave=False
        ) as bar:
            members = _checked_members(tar, archive, bar)
            if HAS_DATA_FILTER:
                tar.extractall(tmp, members=members, filter="data")
            else:  # older Pythons: _check_member is the only guard
                tar.extractall(tmp, members=members)
        (tmp / EXTRACTED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        tmp.chmod(EXTRACTED_DIR_MODE)  # mkdtemp makes it private (0o700); the data set is not secret
        os.replace(tmp, out_dir)
    except (tarfile.TarError, EOFError, OSError) as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"cannot extract {archive}: {_describe(error)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- Speech Commands


def download_speech_commands(version: str = DEFAULT_VERSION, dest: Path = DEFAULT_DEST, *, url: str | None = None,
                             sha256: str | None = None, progress: bool = True) -> Path:
    """Download and extract Speech Commands `version` under `dest`; return the extracted folder.

    The folder is `dest/speech_commands_v<version>` and the archive stays next to it (so the
    folder can be rebuilt without downloading again). A finished extraction leaves a marker, so
    a second call returns at once. `url` replaces the official address (a mirror or a local
    file:// copy); unless `sha256` is given, the download is still checked against the
    published checksum of that version, since a mirror must serve the same bytes.
    """
    info = SPEECH_COMMANDS.get(version)
    if info is None:
        raise DownloadError(f"unknown Speech Commands version {version!r}; known: {', '.join(SPEECH_COMMANDS)}")
    dest = Path(dest)
    out_dir = dest / f"speech_commands_v{version}"
    if (out_dir / EXTRACTED_MARKER).is_file():
        return out_dir
    if out_dir.exists():
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        else:
            raise DownloadError(f"{out_dir} already exists but was not extracted by speech-app; move it away and retry")
    expected = sha256 or info.sha256
    size_bytes = info.size_bytes if expected == info.sha256 else None  # the size belongs to that checksum
    source = url or info.url
    dest.mkdir(parents=True, exist_ok=True)
    archive = download_file(source, dest / f"speech_commands_v{version}.tar.gz", sha256=expected,
                            size_bytes=size_bytes, progress=progress)
    marker = {"version": version, "url": source, "archive": archive.name, "sha256": expected}
    _extract_tar(archive, out_dir, marker, progress)
    return out_dir
