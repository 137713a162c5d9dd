"""The Speech Commands downloader, without network: file:// URLs and a loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_app.data.download import (
    EXTRACTED_MARKER,
    SPEECH_COMMANDS,
    DownloadError,
    download_file,
    download_speech_commands,
)

SAMPLE_RATE_HZ = 16000
CLIP_SECONDS = 0.25
SMALL_CHUNK_BYTES = 1024  # many reads per download, so interruptions land mid-stream
WORDS = ("yes", "no")


def _wav_bytes(seed: int, seconds: float = CLIP_SECONDS) -> bytes:
    """Noise (incompressible, so the archive is tens of KB) as a 16-bit mono WAV."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    sf.write(buffer, rng.uniform(-0.5, 0.5, int(SAMPLE_RATE_HZ * seconds)), SAMPLE_RATE_HZ,
             format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def archive(tmp_path) -> Path:
    """A tiny Speech Commands-like .tar.gz, with `./` names like the real archive."""
    path = tmp_path / "source" / "speech_commands_v0.02.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        _add_dir(tar, "./")
        for w, word in enumerate(WORDS):
            _add_dir(tar, f"./{word}")
            for n in range(2):
                _add_bytes(tar, f"./{word}/{w:04x}abcd_nohash_{n}.wav", _wav_bytes(10 * w + n))
        _add_dir(tar, "./_background_noise_")
        _add_bytes(tar, "./_background_noise_/white_noise.wav", _wav_bytes(99, seconds=1.0))
        _add_bytes(tar, "./validation_list.txt", b"yes/0000abcd_nohash_1.wav\n")
        _add_bytes(tar, "./testing_list.txt", b"no/0001abcd_nohash_1.wav\n")
    return path


def _evil_archive(tmp_path: Path, name: str, kind: str) -> Path:
    path = tmp_path / "source" / name
    path.parent.mkdir(exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, "./yes/ok.wav", _wav_bytes(1))
        if kind == "dotdot":
            _add_bytes(tar, "../evil", b"owned\n")
        elif kind == "absolute":
            _add_bytes(tar, str(tmp_path / "evil_abs"), b"owned\n")
        else:  # a symlink escaping the folder
            info = tarfile.TarInfo("./yes/escape")
            info.type = tarfile.SYMTYPE
            info.linkname = "../../evil_link_target"
            tar.addfile(info)
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- loopback HTTP server


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `payload`; honours `Range: bytes=N-` unless told not to; can drop the first reply."""

    payload = b""
    drop_first_after: int | None = None  # bytes sent before the first reply's connection is cut
    honour_range = True
    ranges: list = []  # the Range header of every request (None when absent)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        cls = type(self)
        header = self.headers.get("Range")
        cls.ranges.append(header)
        match = re.fullmatch(r"bytes=(\d+)-", header or "")
        start = int(match.group(1)) if match and cls.honour_range else 0
        body = cls.payload[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(cls.payload) - 1}/{len(cls.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        if len(cls.ranges) == 1 and cls.drop_first_after is not None:
            self.wfile.write(body[: cls.drop_first_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # cut it mid-body, as a flaky network would
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture()
def http_server():
    """Start a server for a given payload on 127.0.0.1:<free port>; yields (start function, handler)."""
    servers = []

    def start(payload: bytes, *, drop_first_after=None, honour_range=True):
        handler = type("Handler", (_Handler,), {
            "payload": payload, "drop_first_after": drop_first_after,
            "honour_range": honour_range, "ranges": [],
        })
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/speech_commands_v0.02.tar.gz", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- tests


def test_official_archives_have_real_checksums_and_sizes():
    assert set(SPEECH_COMMANDS) == {"0.01", "0.02"}
    for version, info in SPEECH_COMMANDS.items():
        assert info.url == f"http://download.tensorflow.org/data/speech_commands_v{version}.tar.gz"
        assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)
        assert info.size_bytes > 10**9  # both archives are over a gigabyte
    assert SPEECH_COMMANDS["0.02"].sha256.startswith("af14739e")


def test_file_url_download_extracts_and_verifies(tmp_path, archive, capsys):
    dest = tmp_path / "data"
    out = download_speech_commands("0.02", dest, url=archive.as_uri(), sha256=_sha256(archive), progress=True)

    assert out == dest / "speech_commands_v0.02"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["_background_noise_", "no", "yes"]
    audio, rate = sf.read(out / "yes" / "0000abcd_nohash_0.wav")
    assert rate == SAMPLE_RATE_HZ and len(audio) == int(SAMPLE_RATE_HZ * CLIP_SECONDS)
    assert (out / "_background_noise_" / "white_noise.wav").is_file()
    assert (out / EXTRACTED_MARKER).is_file()
    kept = dest / "speech_commands_v0.02.tar.gz"
    assert _sha256(kept) == _sha256(archive)
    assert not list(dest.glob("*.part")) and not list(dest.glob(".*.tmp"))  # nothing half-done left
    assert "speech_commands_v0.02" in capsys.readouterr().err  # tqdm progress went to stderr

    # A second call is a no-op: it neither needs the source nor touches the folder.
    archive.unlink()
    (out / "yes" / "extra.txt").write_text("mine")
    assert download_speech_commands("0.02", dest, url=archive.as_uri(), progress=False) == out
    assert (out / "yes" / "extra.txt").read_text() == "mine"


def test_http_download_resumes_with_range_after_a_dropped_connection(tmp_path, archive, http_server):
    payload = archive.read_bytes()
    cut = len(payload) // 2
    url, handler = http_server(payload, drop_first_after=cut)
    target = tmp_path / "dl" / "speech_commands_v0.02.tar.gz"
    part = target.with_name(target.name + ".part")

    with pytest.raises(DownloadError) as first:
        download_file(url, target, sha256=_sha256(archive), progress=False, chunk_bytes=SMALL_CHUNK_BYTES)
    assert url in str(first.value) and "\n" not in str(first.value)
    assert part.stat().st_size == cut  # what arrived is kept for the resume...
    assert not target.exists()  # ...but never under the final name

    result = download_file(url, target, sha256=_sha256(archive), progress=False, chunk_bytes=SMALL_CHUNK_BYTES)
    assert result == target
    assert handler.ranges == [None, f"bytes={cut}-"]  # the second request asked only for the rest
    assert target.read_bytes() == payload
    assert not part.exists()


def test_http_server_ignoring_range_restarts_from_scratch(tmp_path, archive, http_server):
    payload = archive.read_bytes()
    url, handler = http_server(payload, honour_range=False)
    target = tmp_path / "dl" / "speech_commands_v0.02.tar.gz"
    target.parent.mkdir()
    target.with_name(target.name + ".part").write_bytes(b"stale bytes from another file")

    download_file(url, target, sha256=_sha256(archive), progress=False, chunk_bytes=SMALL_CHUNK_BYTES)
    assert handler.ranges == ["bytes=29-"]  # it asked to resume, got 200, and rewrote the .part
    assert target.read_bytes() == payload


def test_file_url_resume_seeks_past_the_existing_part(tmp_path, archive):
    payload = archive.read_bytes()
    target = tmp_path / "dl" / "a.tar.gz"
    part = target.with_name("a.tar.gz.part")
    target.parent.mkdir()

    part.write_bytes(payload[:1000])
    download_file(archive.as_uri(), target, sha256=_sha256(archive), progress=False)
    assert target.read_bytes() == payload

    # A wrong prefix is kept as-is (proof the file was not re-read from 0), so the hash fails.
    target.unlink()
    part.write_bytes(b"x" * 1000)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(archive.as_uri(), target, sha256=_sha256(archive), progress=False)
    assert not part.exists() and not target.exists()


def test_wrong_checksum_raises_and_leaves_no_file(tmp_path, archive):
    wrong = "0" * 64
    dest = tmp_path / "data"
    with pytest.raises(DownloadError) as error:
        download_speech_commands("0.02", dest, url=archive.as_uri(), sha256=wrong, progress=False)
    message = str(error.value)
    assert wrong in message and _sha256(archive) in message and archive.as_uri() in message
    assert "\n" not in message
    assert sorted(p.name for p in dest.iterdir()) == []  # no archive, no .part, no folder


def test_wrong_size_raises(tmp_path, archive):
    with pytest.raises(DownloadError, match="expected 5 bytes|, expected 5"):
        download_file(archive.as_uri(), tmp_path / "a.tar.gz", size_bytes=5, progress=False)
    assert not (tmp_path / "a.tar.gz").exists()


def test_existing_verified_archive_is_not_downloaded_again(tmp_path, archive):
    target = tmp_path / "speech_commands_v0.02.tar.gz"
    target.write_bytes(archive.read_bytes())
    unreachable = f"http://127.0.0.1:{_closed_port()}/speech_commands_v0.02.tar.gz"
    assert download_file(unreachable, target, sha256=_sha256(archive), progress=False) == target
    assert download_file(unreachable, tmp_path, sha256=_sha256(archive), progress=False) == target  # folder dest


def test_without_checksum_the_computed_hash_is_warned_and_recorded(tmp_path, archive, capsys):
    target = download_file(archive.as_uri(), tmp_path / "a.tar.gz", progress=False)
    digest = _sha256(archive)
    assert digest in capsys.readouterr().err
    assert (tmp_path / "a.tar.gz.sha256").read_text() == f"{digest}  a.tar.gz\n"
    assert target.read_bytes() == archive.read_bytes()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_archive_escaping_the_folder_is_refused(tmp_path, kind):
    bad = _evil_archive(tmp_path, "speech_commands_v0.01.tar.gz", kind)
    dest = tmp_path / "deep" / "data"
    with pytest.raises(DownloadError, match="refusing to extract") as error:
        download_speech_commands("0.01", dest, url=bad.as_uri(), sha256=_sha256(bad), progress=False)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "deep" / "evil").exists() and not (tmp_path / "evil_abs").exists()
    assert not (dest / "speech_commands_v0.01").exists()
    assert not list(dest.glob(".*.tmp"))  # the temporary folder is cleaned up


def test_unreachable_url_gives_a_one_line_error(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/speech_commands_v0.02.tar.gz"
    with pytest.raises(DownloadError) as error:
        download_speech_commands("0.02", tmp_path, url=url, progress=False)
    message = str(error.value)
    assert url in message and "\n" not in message
    assert "refused" in message.lower()
    assert not list(tmp_path.iterdir())  # no .part for a request that never connected


def test_unknown_version_and_foreign_folder_are_refused(tmp_path, archive):
    with pytest.raises(DownloadError, match="unknown Speech Commands version"):
        download_speech_commands("9.99", tmp_path, progress=False)
    (tmp_path / "speech_commands_v0.02" / "yes").mkdir(parents=True)
    (tmp_path / "speech_commands_v0.02" / "yes" / "mine.wav").write_bytes(b"RIFF")
    with pytest.raises(DownloadError, match="not extracted by speech-app"):
        download_speech_commands("0.02", tmp_path, url=archive.as_uri(), sha256=_sha256(archive), progress=False)
    assert (tmp_path / "speech_commands_v0.02" / "yes" / "mine.wav").read_bytes() == b"RIFF"
