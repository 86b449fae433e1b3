"""Where structures come from: path > $CRYO_COMPANION_STRUCTURES > cache > PDB download.

The download is real HTTP code, tested against an http.server on loopback that serves the
offline mirror (these machines have no internet).
"""
from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from cryo_companion.structures.atoms import read_atoms
from cryo_companion.structures.sources import (
    StructureNotFoundError,
    cache_dir,
    download_pdb,
    find_structure,
    is_pdb_id,
)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder, and no downloads unless a test points the URL somewhere."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CRYO_COMPANION_CACHE", str(root))
    monkeypatch.setenv("CRYO_COMPANION_PDB_URL", f"http://127.0.0.1:{_closed_port()}/")
    return root


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _CutShort(_Quiet):
    """Announces the full length but sends only half of the file, then hangs up."""

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve():
    """Start a loopback HTTP server on a folder; yields a function returning its base URL."""
    servers = []

    def start(folder: Path, handler=_Quiet) -> str:
        h = functools.partial(handler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_ids():
    assert is_pdb_id("4v94") and is_pdb_id("1S3X")
    assert not is_pdb_id("mb_5gjv") and not is_pdb_id("4v4r_30S") and not is_pdb_id("abcd")


def test_structures_folder(structures_dir, cache):
    src = find_structure("1s3x")
    assert (src.kind, src.origin) == ("atoms", "structures")
    assert src.path == structures_dir / "pdb" / "1s3x.pdb.gz"
    assert find_structure("1s3x", kind="map").path.name == "1s3x.mrc.gz"
    assert find_structure("4cr2").kind == "map"  # no atomic model: the map
    assert find_structure("5gjv", kind="map").path.name == "mb_5gjv.mrc.gz"
    assert find_structure("4V4R_30S").path.name == "4v4r_30S.pdb.gz"


def test_explicit_path_comes_first(structures_dir, tmp_path, cache):
    mine = tmp_path / "1s3x.pdb.gz"
    shutil.copy(structures_dir / "pdb" / "1s3x.pdb.gz", mine)
    src = find_structure(mine)
    assert (src.path, src.origin, src.kind) == (mine, "path", "atoms")
    assert find_structure(structures_dir / "maps_10A" / "4cr2.mrc.gz").kind == "map"
    with pytest.raises(StructureNotFoundError, match="no such file"):
        find_structure(tmp_path / "absent.pdb")
    with pytest.raises(ValueError, match="is an atomic model"):
        find_structure(mine, kind="map")


def test_cache_comes_after_the_structures_folder(structures_dir, cache, monkeypatch):
    (cache / "structures" / "pdb").mkdir(parents=True)
    shutil.copy(structures_dir / "pdb" / "3qm1.pdb.gz", cache / "structures" / "pdb")
    assert find_structure("3qm1").origin == "structures"
    monkeypatch.delenv("CRYO_COMPANION_STRUCTURES")
    assert cache_dir() == cache
    src = find_structure("3qm1")
    assert (src.origin, src.kind) == ("cache", "atoms")


def test_download_from_loopback_server(structures_dir, cache, serve, monkeypatch):
    monkeypatch.delenv("CRYO_COMPANION_STRUCTURES")
    monkeypatch.setenv("CRYO_COMPANION_PDB_URL", serve(structures_dir) + "/pdb/")
    src = find_structure("1s3x")
    assert src.origin == "download"
    assert src.path == cache / "structures" / "pdb" / "1s3x.pdb.gz"
    assert src.path.read_bytes() == (structures_dir / "pdb" / "1s3x.pdb.gz").read_bytes()
    assert len(read_atoms(src.path)) == len(read_atoms(structures_dir / "pdb" / "1s3x.pdb.gz"))
    assert sorted(p.name for p in src.path.parent.iterdir()) == ["1s3x.pdb.gz"]  # no temp files
    again = find_structure("1s3x")  # now from the cache, no server needed
    assert again.origin == "cache"


def test_download_is_checked_and_atomic(structures_dir, tmp_path, cache, serve, monkeypatch):
    monkeypatch.delenv("CRYO_COMPANION_STRUCTURES")
    bad = tmp_path / "bad" / "pdb"
    bad.mkdir(parents=True)
    raw = (structures_dir / "pdb" / "1s3x.pdb.gz").read_bytes()
    (bad / "1s3x.pdb.gz").write_bytes(raw[: len(raw) // 2])  # truncated gzip on the server
    (bad / "3qm1.pdb.gz").write_bytes(gzip.compress(b"HEADER    NO ATOMS\nEND\n"))
    monkeypatch.setenv("CRYO_COMPANION_PDB_URL", serve(bad.parent) + "/pdb")
    with pytest.raises(StructureNotFoundError, match="not a complete gzip"):
        find_structure("1s3x")
    with pytest.raises(StructureNotFoundError, match="not a usable model"):
        find_structure("3qm1")
    # a connection that ends early with the full Content-Length announced
    monkeypatch.setenv("CRYO_COMPANION_PDB_URL", serve(structures_dir, _CutShort) + "/pdb/")
    with pytest.raises(StructureNotFoundError, match="incomplete|got"):
        find_structure("1s3x")
    leftovers = list(cache.rglob("*")) if cache.exists() else []
    assert [p for p in leftovers if p.is_file()] == []


def test_unknown_id_offline_is_one_clear_error(cache):
    with pytest.raises(StructureNotFoundError) as info:
        find_structure("9zzz")
    msg = str(info.value)
    assert "'9zzz'" in msg and "CRYO_COMPANION_STRUCTURES" in msg and "download" in msg


def test_offline_switch_and_names_that_are_not_ids(cache, monkeypatch):
    monkeypatch.setenv("CRYO_COMPANION_OFFLINE", "1")
    with pytest.raises(StructureNotFoundError, match="downloads are off"):
        find_structure("9zzz")
    monkeypatch.delenv("CRYO_COMPANION_OFFLINE")
    with pytest.raises(StructureNotFoundError, match="not a PDB ID"):
        find_structure("mb_9zzz")
    with pytest.raises(ValueError, match="neither a file nor a structure ID"):
        find_structure("two words")
    with pytest.raises(ValueError, match="not a PDB ID"):
        download_pdb("mb_5gjv")
