"""Subtomogram folders: round trip, a user's own folder, bad input, atomic writes."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.dataset import SubtomogramSet, load_subtomograms, save_subtomograms
from cryo_companion.mrc import write_mrc


def _set(n=5, D=8, masks=True):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(n, D, D, D)).astype(np.float32)
    m = rng.random((n, D, D, D)) > 0.7 if masks else None
    return SubtomogramSet(v, np.arange(n) % 3, m, ["ribosome", "membrane", "TRiC"], 13.68,
                          {"test_domain_hash": "abc"})


def test_round_trip(tmp_path):
    s = _set()
    save_subtomograms(tmp_path / "set", s)
    r = load_subtomograms(tmp_path / "set")
    assert np.array_equal(r.volumes, s.volumes) and np.array_equal(r.labels, s.labels)
    assert np.array_equal(r.masks, s.masks)
    assert r.class_names == s.class_names and r.voxel_size_A == pytest.approx(13.68)
    assert r.meta["test_domain_hash"] == "abc"
    # saving again replaces the folder completely
    save_subtomograms(tmp_path / "set", s.subset([0, 1]))
    assert len(load_subtomograms(tmp_path / "set")) == 2


def test_users_own_folder_without_meta_or_masks(tmp_path):
    """A reader's real data: MRC files and a hand-written labels.csv, classes by name."""
    rng = np.random.default_rng(1)
    rows = ["file,class"]
    for i, c in enumerate(["proteasome", "ribosome", "proteasome"]):
        write_mrc(tmp_path / f"p{i}.mrc", rng.normal(size=(6, 6, 6)), 13.68)
        rows.append(f"p{i}.mrc,{c}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    r = load_subtomograms(tmp_path)
    assert r.masks is None and r.class_names == ["proteasome", "ribosome"]
    assert list(r.labels) == [0, 1, 0]
    r2 = load_subtomograms(tmp_path, ["ribosome", "membrane", "TRiC", "proteasome"])
    assert list(r2.labels) == [3, 0, 3]
    with pytest.raises(ValueError, match="unknown class"):
        load_subtomograms(tmp_path, ["ribosome"])
    # with masks
    for i in range(3):
        write_mrc(tmp_path / f"m{i}.mrc", np.ones((6, 6, 6)), 13.68)
    (tmp_path / "labels.csv").write_text(
        "file,class,mask\n" + "".join(f"p{i}.mrc,ribosome,m{i}.mrc\n" for i in range(3)))
    assert load_subtomograms(tmp_path).masks.all()


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_subtomograms(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        load_subtomograms(tmp_path)
    (tmp_path / "labels.csv").write_text("name,label\na,b\n")
    with pytest.raises(ValueError, match="columns"):
        load_subtomograms(tmp_path)
    write_mrc(tmp_path / "a.mrc", np.zeros((4, 4, 4)), 10.0)
    write_mrc(tmp_path / "b.mrc", np.zeros((6, 6, 6)), 10.0)
    (tmp_path / "labels.csv").write_text("file,class\na.mrc,x\nb.mrc,x\n")
    with pytest.raises(ValueError, match="different sizes"):
        load_subtomograms(tmp_path)


def test_nothing_half_written(tmp_path):
    s = _set()
    s.volumes[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        save_subtomograms(tmp_path / "set", s)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="labels"):
        SubtomogramSet(np.zeros((2, 4, 4, 4)), [0, 5], None, ["a"], 10.0)


def test_nan_in_meta_is_refused_and_nothing_written(tmp_path):
    s = _set()
    s.meta["snr"] = float("nan")
    with pytest.raises(ValueError, match="JSON"):
        save_subtomograms(tmp_path / "set", s)
    assert list(tmp_path.iterdir()) == []
