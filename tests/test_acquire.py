"""Dataset acquisition: downloads from a real local HTTP server, the download cache, and the local mirror.

The only network used is a ThreadingHTTPServer on 127.0.0.1 started by the ``server`` fixture.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from facegen.config import MIRROR_ENV
from facegen.data.acquire import (
    AcquisitionError,
    ChecksumError,
    RemoteFile,
    download,
    mirror_root,
    read_sha256sums,
    resolve,
)

# 300 kB of deterministic, non-repeating bytes: several 64 KiB chunks, so truncation lands mid-stream.
DATA = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(300_000 // 32))
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
SMALL = b"file,identity\n000001.jpg,1\n000002.jpg,2\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalServer:
    """Static files from ``root`` with ``Range: bytes=N-`` support; behaviour switchable per test.

    ``truncate_at``: send a Content-Length for the whole body but only this many bytes, then close.
    ``honour_range``: when False, answer a ranged request with 200 and the whole file.
    ``log``: (path, Range header or None) for every request received.
    """

    def __init__(self, root: Path):
        self.root = root
        self.truncate_at: int | None = None
        self.honour_range = True
        self.log: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                owner.log.append((self.path, rng))
                path = owner.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                if rng and owner.honour_range:
                    match = re.fullmatch(r"bytes=(\d+)-", rng)
                    assert match, rng
                    start = int(match[1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if owner.truncate_at is not None:
                    self.wfile.write(body[: owner.truncate_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def put(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(autouse=True)
def _no_proxy_no_mirror(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv(MIRROR_ENV, raising=False)


@pytest.fixture
def server(tmp_path):
    srv = LocalServer(tmp_path / "www")
    srv.root.mkdir()
    yield srv
    srv.close()


def make_mirror(root: Path, files: dict[str, bytes], sums: dict[str, str] | None = None) -> Path:
    """A mirror folder holding ``files`` and a SHA256SUMS (``sums`` overrides the listed digests)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        lines.append(f"{(sums or {}).get(name, sha256(data))}  {name}")
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------------------------------
# download()


def test_download_good_file_verified_and_renamed(server, tmp_path):
    url = server.put("ds/blob.bin", DATA)
    dest = tmp_path / "dl" / "ds" / "blob.bin"

    out = download(url, dest, f"sha256:{SHA}", "'ds/blob.bin'")

    assert out == dest
    assert dest.read_bytes() == DATA
    assert not dest.with_name("blob.bin.part").exists()
    assert server.log == [("/ds/blob.bin", None)]  # a fresh download sends no Range header


def test_download_truncated_keeps_part_and_resumes(server, tmp_path):
    url = server.put("ds/blob.bin", DATA)
    dest = tmp_path / "dl" / "blob.bin"
    part = dest.with_name("blob.bin.part")
    server.truncate_at = 150_000

    with pytest.raises(AcquisitionError) as err:
        download(url, dest, f"sha256:{SHA}", "'ds/blob.bin'")
    assert not isinstance(err.value, ChecksumError)
    msg = str(err.value)
    assert "download of 'ds/blob.bin'" in msg and url in msg
    assert MIRROR_ENV in msg
    assert not dest.exists()
    assert part.exists()
    kept = part.read_bytes()
    assert 0 < len(kept) <= 150_000
    assert DATA.startswith(kept)  # what was kept is a true prefix, so resuming is sound

    server.truncate_at = None
    out = download(url, dest, f"sha256:{SHA}", "'ds/blob.bin'")

    assert out == dest
    assert server.log[-1] == ("/ds/blob.bin", f"bytes={len(kept)}-")
    assert len(server.log) == 2
    assert dest.read_bytes() == DATA
    assert not part.exists()


def test_download_truncated_message_says_stopped_and_resume(server, tmp_path):
    url = server.put("ds/blob.bin", DATA)
    dest = tmp_path / "dl" / "blob.bin"
    server.truncate_at = 150_000

    with pytest.raises(AcquisitionError) as err:
        download(url, dest, f"sha256:{SHA}", "'ds/blob.bin'")
    msg = str(err.value)
    kept = dest.with_name("blob.bin.part").stat().st_size
    assert f"stopped at {kept} of {len(DATA)} bytes" in msg
    assert "rerun to resume" in msg
    assert MIRROR_ENV in msg


def test_download_wrong_checksum_removes_part(server, tmp_path):
    url = server.put("ds/blob.bin", DATA)
    dest = tmp_path / "dl" / "blob.bin"
    wrong = "0" * 64

    with pytest.raises(ChecksumError) as err:
        download(url, dest, f"sha256:{wrong}", "'ds/blob.bin'")
    msg = str(err.value)
    assert "checksum mismatch for 'ds/blob.bin'" in msg
    assert f"expected sha256 {wrong}" in msg
    assert f"got {SHA}" in msg
    assert MIRROR_ENV in msg
    assert not dest.exists()
    assert not dest.with_name("blob.bin.part").exists()


def test_download_md5_checksum(server, tmp_path):
    url = server.put("blob.bin", DATA)
    dest = tmp_path / "blob.bin"
    download(url, dest, f"md5:{MD5.upper()}", "'blob.bin'")  # hex case does not matter
    assert dest.read_bytes() == DATA


def test_download_complete_part_answered_416(server, tmp_path):
    url = server.put("blob.bin", DATA)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(DATA)

    download(url, dest, f"sha256:{SHA}", "'blob.bin'")

    assert server.log == [("/blob.bin", f"bytes={len(DATA)}-")]
    assert dest.read_bytes() == DATA
    assert not dest.with_name("blob.bin.part").exists()


def test_download_restarts_when_server_ignores_range(server, tmp_path):
    url = server.put("blob.bin", DATA)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(b"stale bytes from another file")
    server.honour_range = False

    download(url, dest, f"sha256:{SHA}", "'blob.bin'")

    assert server.log == [("/blob.bin", "bytes=29-")]
    assert dest.read_bytes() == DATA  # the stale prefix was discarded, not kept in front


def test_download_http_error(server, tmp_path):
    dest = tmp_path / "missing.bin"
    with pytest.raises(AcquisitionError) as err:
        download(server.url("missing.bin"), dest, None, "'missing.bin'")
    msg = str(err.value)
    assert "download of 'missing.bin'" in msg and "failed" in msg and "404" in msg
    assert MIRROR_ENV in msg
    assert not dest.exists()


# --------------------------------------------------------------------------------------------------
# resolve() from the web and the download cache


def test_resolve_downloads_then_uses_cache(server, tmp_path):
    files = [
        RemoteFile("ds/blob.bin", (server.put("ds/blob.bin", DATA),), f"sha256:{SHA}"),
        RemoteFile("ds/ids.txt", (server.put("ds/ids.txt", SMALL),), f"md5:{hashlib.md5(SMALL).hexdigest()}"),
    ]
    dl = tmp_path / "downloads"

    first = resolve(files, None, dl)

    assert sorted(first) == ["blob.bin", "ids.txt"]
    assert first["blob.bin"].source == server.url("ds/blob.bin")
    assert first["ids.txt"].source == server.url("ds/ids.txt")
    assert first["blob.bin"].path == (dl / "ds" / "blob.bin").resolve()
    assert first["blob.bin"].sha256 == SHA
    assert first["ids.txt"].sha256 == sha256(SMALL)
    assert first["ids.txt"].path.read_bytes() == SMALL
    assert first["blob.bin"].as_dict() == {"path": str(first["blob.bin"].path), "sha256": SHA, "source": server.url("ds/blob.bin")}
    assert len(server.log) == 2

    second = resolve(files, None, dl)

    assert {k: v.source for k, v in second.items()} == {"blob.bin": "cache", "ids.txt": "cache"}
    assert second["blob.bin"].path == first["blob.bin"].path
    assert second["ids.txt"].sha256 == sha256(SMALL)
    assert len(server.log) == 2  # nothing fetched again


def test_resolve_corrupt_cache_is_rejected(server, tmp_path):
    files = [RemoteFile("ds/blob.bin", (server.put("ds/blob.bin", DATA),), f"sha256:{SHA}")]
    dl = tmp_path / "downloads"
    (dl / "ds").mkdir(parents=True)
    (dl / "ds" / "blob.bin").write_bytes(DATA[:-1])

    with pytest.raises(ChecksumError) as err:
        resolve(files, None, dl)
    assert "cached download" in str(err.value) and "blob.bin" in str(err.value)
    assert server.log == []


def test_resolve_falls_through_to_second_url(server, tmp_path):
    good = server.put("b/blob.bin", DATA)
    files = [RemoteFile("ds/blob.bin", (server.url("a/blob.bin"), good), f"sha256:{SHA}")]

    out = resolve(files, None, tmp_path / "dl")

    assert out["blob.bin"].source == good
    assert [p for p, _ in server.log] == ["/a/blob.bin", "/b/blob.bin"]


def test_resolve_wrong_checksum_stops_at_first_url(server, tmp_path):
    files = [RemoteFile("ds/blob.bin", (server.put("a/blob.bin", DATA), server.put("b/blob.bin", DATA)), "md5:" + "f" * 32)]
    with pytest.raises(ChecksumError) as err:
        resolve(files, None, tmp_path / "dl")
    assert "'ds/blob.bin'" in str(err.value) and "f" * 32 in str(err.value) and MD5 in str(err.value)
    assert [p for p, _ in server.log] == ["/a/blob.bin"]
    assert not (tmp_path / "dl" / "ds" / "blob.bin").exists()


def test_resolve_unavailable_required_and_optional(server, tmp_path):
    required = RemoteFile("ds/gone.bin", (server.url("gone.bin"),))
    optional = RemoteFile("ds/opt.bin", (server.url("opt.bin"),), required=False)

    assert resolve([optional], None, tmp_path / "dl") == {}
    with pytest.raises(AcquisitionError) as err:
        resolve([required], None, tmp_path / "dl")
    assert "could not obtain ds/gone.bin" in str(err.value) and "404" in str(err.value)


def test_resolve_required_without_url(tmp_path):
    with pytest.raises(AcquisitionError) as err:
        resolve([RemoteFile("ds/manual.zip")], None, tmp_path / "dl")
    assert "ds/manual.zip has no public download URL" in str(err.value)
    assert MIRROR_ENV in str(err.value)
    assert resolve([RemoteFile("ds/manual.zip", required=False)], None, tmp_path / "dl") == {}


# --------------------------------------------------------------------------------------------------
# the local mirror


def test_mirror_file_used_in_place(server, tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/blob.bin": DATA, "ds/ids.txt": SMALL})
    files = [
        RemoteFile("ds/blob.bin", (server.put("ds/blob.bin", DATA),), f"sha256:{SHA}"),
        RemoteFile("ds/ids.txt", (server.put("ds/ids.txt", SMALL),)),
    ]
    dl = tmp_path / "dl"

    out = resolve(files, str(mirror), dl)

    assert out["blob.bin"].source == f"mirror:{mirror.resolve()}"
    assert out["blob.bin"].source.startswith("mirror:")
    assert out["blob.bin"].path == mirror.resolve() / "ds" / "blob.bin"
    assert out["blob.bin"].path.is_relative_to(mirror.resolve())
    assert out["blob.bin"].sha256 == SHA
    assert out["ids.txt"].path.read_bytes() == SMALL
    assert not dl.exists()  # no copy made
    assert server.log == []


def test_mirror_sha256sums_binary_marker_and_blank_lines(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "ds").mkdir(parents=True)
    (mirror / "ds" / "ids.txt").write_bytes(SMALL)
    (mirror / "SHA256SUMS").write_text(f"\n{sha256(SMALL).upper()} *ds/ids.txt\n\n")
    assert read_sha256sums(mirror) == {"ds/ids.txt": sha256(SMALL)}
    out = resolve([RemoteFile("ds/ids.txt")], str(mirror), tmp_path / "dl")
    assert out["ids.txt"].sha256 == sha256(SMALL)


def test_mirror_content_mismatch(tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/blob.bin": DATA}, sums={"ds/blob.bin": "a" * 64})
    with pytest.raises(ChecksumError) as err:
        resolve([RemoteFile("ds/blob.bin")], str(mirror), tmp_path / "dl")
    msg = str(err.value)
    assert "mirror file 'ds/blob.bin'" in msg
    assert "a" * 64 in msg and SHA in msg
    assert MIRROR_ENV in msg
    assert (mirror / "ds" / "blob.bin").read_bytes() == DATA  # the mirror is never modified


def test_mirror_without_sha256sums(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "ds").mkdir(parents=True)
    (mirror / "ds" / "ids.txt").write_bytes(SMALL)
    with pytest.raises(AcquisitionError) as err:
        resolve([RemoteFile("ds/ids.txt")], str(mirror), tmp_path / "dl")
    assert "has no SHA256SUMS file" in str(err.value)
    assert str(mirror.resolve()) in str(err.value)


def test_mirror_file_not_listed(tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/ids.txt": SMALL})
    (mirror / "ds" / "extra.txt").write_bytes(b"x")
    with pytest.raises(AcquisitionError) as err:
        resolve([RemoteFile("ds/extra.txt")], str(mirror), tmp_path / "dl")
    assert "is not listed in" in str(err.value) and "SHA256SUMS" in str(err.value)


def test_mirror_optional_missing_skipped_without_network(server, tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/ids.txt": SMALL})
    optional = RemoteFile("ds/partition.txt", (server.put("ds/partition.txt", b"a 0\n"),), required=False)
    out = resolve([RemoteFile("ds/ids.txt"), optional], str(mirror), tmp_path / "dl")
    assert sorted(out) == ["ids.txt"]
    assert server.log == []
    assert not (tmp_path / "dl").exists()


def test_mirror_required_missing_falls_back_to_web(server, tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/ids.txt": SMALL})
    url = server.put("ds/blob.bin", DATA)
    out = resolve([RemoteFile("ds/ids.txt"), RemoteFile("ds/blob.bin", (url,), f"sha256:{SHA}")], str(mirror), tmp_path / "dl")
    assert out["ids.txt"].source.startswith("mirror:")
    assert out["blob.bin"].source == url
    assert out["blob.bin"].path == (tmp_path / "dl" / "ds" / "blob.bin").resolve()


def test_mirror_env_var_honoured(monkeypatch, server, tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/blob.bin": DATA})
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    out = resolve([RemoteFile("ds/blob.bin", (server.url("ds/blob.bin"),))], None, tmp_path / "dl")
    assert out["blob.bin"].source == f"mirror:{mirror.resolve()}"
    assert server.log == []
    assert mirror_root(None) == mirror.resolve()


def test_mirror_config_wins_over_env(monkeypatch, tmp_path):
    mirror = make_mirror(tmp_path / "mirror", {"ds/blob.bin": DATA})
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "nowhere"))
    assert mirror_root(str(mirror)) == mirror.resolve()


def test_mirror_nonexistent_dir(monkeypatch, tmp_path):
    missing = tmp_path / "no-such-mirror"
    monkeypatch.setenv(MIRROR_ENV, str(missing))
    with pytest.raises(AcquisitionError) as err:
        resolve([RemoteFile("ds/blob.bin")], None, tmp_path / "dl")
    assert f"data mirror '{missing}' is not a directory" in str(err.value)
    assert MIRROR_ENV in str(err.value)

    monkeypatch.delenv(MIRROR_ENV)
    afile = tmp_path / "a-file"
    afile.write_text("not a dir")
    with pytest.raises(AcquisitionError, match="is not a directory"):
        resolve([RemoteFile("ds/blob.bin")], str(afile), tmp_path / "dl")
    assert mirror_root(None) is None
    assert not (tmp_path / "dl").exists()
    assert os.listdir(tmp_path) == ["a-file"]
