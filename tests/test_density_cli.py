"""``cryo-companion density``: an MRC with the voxel size in its header, or a clear error
(exit code 2) that leaves nothing behind."""
from __future__ import annotations

import gzip
import shutil
import socket
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryo_companion.cli.main import main
from cryo_companion.mrc import read_mrc, write_mrc


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test its own cache, and no download (an unused loopback port)."""
    monkeypatch.setenv("CRYO_COMPANION_CACHE", str(tmp_path / "cache"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CRYO_COMPANION_PDB_URL", f"http://127.0.0.1:{port}/")


def _com_zyx(vol: np.ndarray) -> np.ndarray:
    v = np.clip(vol.astype(np.float64), 0, None)
    idx = np.indices(v.shape).reshape(3, -1)
    return (idx * v.reshape(-1)).sum(1) / v.sum()


def _no_leftovers(folder: Path) -> None:
    assert [p.name for p in folder.iterdir()] == [], "something was left half-written"


def test_density_from_id(tmp_path, capsys):
    out = tmp_path / "out" / "1s3x.mrc"
    rc = main(["density", "1s3x", "--voxel-size", "10", "--box", "32", "--resolution", "20",
               "-o", str(out)])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    with mrcfile.open(out) as m:
        assert float(m.voxel_size.x) == pytest.approx(10.0)
        assert m.data.shape == (32, 32, 32)
    vol = read_mrc(out).data
    assert vol.min() >= -1e-6 * vol.max() and vol.max() > 0
    np.testing.assert_allclose(_com_zyx(vol), [16, 16, 16], atol=0.25)
    assert sorted(p.name for p in out.parent.iterdir()) == ["1s3x.mrc"]


def test_density_from_files(structures_dir, tmp_path):
    pdb = tmp_path / "model.pdb"
    pdb.write_bytes(gzip.decompress((structures_dir / "pdb" / "3qm1.pdb.gz").read_bytes()))
    assert main(["density", str(pdb), "--voxel-size", "13.68", "--box", "24",
                 "-o", str(tmp_path / "a.mrc")]) == 0
    assert read_mrc(tmp_path / "a.mrc").voxel_size_A == pytest.approx(13.68, abs=1e-3)
    # a map, resampled from 10 Å to 13.68 Å voxels
    assert main(["density", str(structures_dir / "maps_10A" / "4cr2.mrc.gz"),
                 "--voxel-size", "13.68", "--box", "40", "-o", str(tmp_path / "b.mrc")]) == 0
    vol = read_mrc(tmp_path / "b.mrc").data
    assert vol.shape == (40, 40, 40)
    np.testing.assert_allclose(_com_zyx(vol), [20, 20, 20], atol=0.5)


def _fail(args, capsys, *needles):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1, f"expected one line, got: {err}"
    for n in needles:
        assert n.lower() in err.lower(), err
    return err


def test_bad_inputs_exit_2_and_write_nothing(structures_dir, tmp_path, capsys):
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = str(outdir / "x.mrc")
    base = ["--voxel-size", "10", "--box", "32", "-o", out]

    empty = tmp_path / "empty.pdb"
    empty.write_bytes(b"")
    _fail(["density", str(empty), *base], capsys, "empty")

    truncated = tmp_path / "cut.pdb"
    text = gzip.decompress((structures_dir / "pdb" / "1s3x.pdb.gz").read_bytes()).decode()
    cut = text.index("ATOM", text.index("ATOM") + 1000)
    truncated.write_text(text[: cut + 40])
    _fail(["density", str(truncated), *base], capsys, "truncated")

    cut_gz = tmp_path / "cut.pdb.gz"
    raw = (structures_dir / "pdb" / "1s3x.pdb.gz").read_bytes()
    cut_gz.write_bytes(raw[: len(raw) // 3])
    _fail(["density", str(cut_gz), *base], capsys, "gzip")

    corrupt = tmp_path / "corrupt.mrc"
    shutil.copy(structures_dir / "maps_10A" / "1s3x.mrc.gz", tmp_path / "good.mrc.gz")
    good = gzip.decompress((tmp_path / "good.mrc.gz").read_bytes())
    corrupt.write_bytes(b"\xff" * 1024 + good[1024:])  # header overwritten
    _fail(["density", str(corrupt), *base], capsys, "corrupt.mrc")

    nan_map = tmp_path / "nan.mrc"
    data = np.zeros((16, 16, 16), np.float32)
    data[8, 8, 8] = 1.0
    write_mrc(nan_map, data, 10.0)
    raw = bytearray(nan_map.read_bytes())
    at = len(raw) - data.nbytes + 4 * (8 * 256 + 8 * 16 + 8)  # the voxel (8, 8, 8)
    raw[at:at + 4] = np.float32(np.nan).tobytes()
    nan_map.write_bytes(bytes(raw))
    _fail(["density", str(nan_map), *base], capsys, "nan")

    _fail(["density", "9zzz", *base], capsys, "9zzz", "CRYO_COMPANION_STRUCTURES")
    _fail(["density", "1s3x", "--voxel-size", "-1", "--box", "32", "-o", out], capsys,
          "voxel-size")
    _fail(["density", "1s3x", "--voxel-size", "10", "--box", "32", "--resolution", "0",
           "-o", out], capsys, "resolution")
    _fail(["density", "1s3x", "--voxel-size", "10", "--box", "32", "-o",
           str(outdir / "x.txt")], capsys, ".mrc")
    _no_leftovers(outdir)


def test_box_too_small(tmp_path, capsys):
    out = tmp_path / "small.mrc"
    _fail(["density", "1bxn", "--voxel-size", "10", "--box", "6", "-o", str(out)], capsys,
          "too small")
    assert not out.exists()
    assert main(["density", "1bxn", "--voxel-size", "10", "--box", "6", "--grow-box",
                 "-o", str(out)]) == 0
    assert read_mrc(out).data.shape[0] > 6


def test_existing_output_is_refused_then_replaced_whole_with_force(tmp_path, capsys):
    out = tmp_path / "o.mrc"
    out.write_bytes(b"old")
    _fail(["density", "3qm1", "--voxel-size", "10", "--box", "24", "-o", str(out)], capsys,
          "exists", "--force")
    assert out.read_bytes() == b"old"
    assert main(["density", "3qm1", "--voxel-size", "10", "--box", "24", "-o", str(out),
                 "--force"]) == 0
    assert read_mrc(out).data.shape == (24, 24, 24)
    # a failing run leaves the previous file as it was
    before = out.read_bytes()
    assert main(["density", "9zzz", "--voxel-size", "10", "--box", "24", "-o", str(out),
                 "--force"]) == 2
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "o.mrc"]


def test_box_too_small_speaks_in_options(tmp_path, capsys):
    err = _fail(["density", "1bxn", "--voxel-size", "10", "--box", "6", "-o",
                 str(tmp_path / "s.mrc")], capsys, "--grow-box", "--box")
    assert "grow_box=True" not in err


def test_help_lists_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["density", "--help"])
    assert "--voxel-size" in capsys.readouterr().out
