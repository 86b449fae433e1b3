"""MRC files as the field's tools read them: integer modes for labels, image stacks for tilt
series, read back exactly."""
from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from cryo_companion.mrc import MrcError, label_dtype, read_mrc, write_mrc
from cryo_companion.simulate.tiltseries import TiltSeries, tilt_angles_deg, write_tilt_series


@pytest.mark.parametrize("lo,hi,dtype,mode", [
    (0, 1, np.int8, 0), (0, 127, np.int8, 0), (0, 128, np.int16, 1), (-1, 5, np.int16, 1),
    (0, 32767, np.int16, 1), (0, 40000, np.uint16, 6), (0, 70000, np.float32, 2),
])
def test_labels_take_the_smallest_exact_mode(tmp_path, lo, hi, dtype, mode):
    labels = np.zeros((3, 4, 5), dtype=np.int64)
    labels[0, 0, 0], labels[2, 3, 4] = lo, hi
    assert label_dtype(labels) == np.dtype(dtype)
    path = write_mrc(tmp_path / "l.mrc", labels, 10.0)
    with mrcfile.open(path) as m:
        assert int(m.header.mode) == mode and m.is_volume()
    back = read_mrc(path).data
    np.testing.assert_array_equal(back, labels)          # every label exactly


def test_masks_are_mode_0_and_floats_mode_2(tmp_path):
    mask = np.zeros((4, 4, 4), dtype=bool)
    mask[1:3, 1:3, 1:3] = True
    with mrcfile.open(write_mrc(tmp_path / "m.mrc", mask, 13.68)) as m:
        assert int(m.header.mode) == 0 and m.data.dtype == np.int8
        assert m.voxel_size.x == pytest.approx(13.68, abs=1e-3)
    assert read_mrc(tmp_path / "m.mrc").data.sum() == 8
    with mrcfile.open(write_mrc(tmp_path / "f.mrc", mask.astype(np.float64), 1.0)) as m:
        assert int(m.header.mode) == 2
    with pytest.raises(MrcError, match="do not fit"):
        label_dtype(np.array([0, 2 ** 25]))
    with pytest.raises(MrcError, match="boolean or integer"):
        label_dtype(np.zeros(3))


def test_image_stack_header(tmp_path):
    images = np.random.default_rng(0).standard_normal((7, 6, 5)).astype(np.float32)
    path = write_mrc(tmp_path / "s.mrc", images, 2.5, image_stack=True)
    with mrcfile.open(path) as m:
        assert int(m.header.ispg) == 0 and m.is_image_stack()
        assert int(m.header.nz) == 7 and int(m.header.mode) == 2
    np.testing.assert_array_equal(read_mrc(path).data, images)
    with pytest.raises(MrcError, match=r"\(n, y, x\) images"):
        write_mrc(tmp_path / "bad.mrc", images[None], 2.5, image_stack=True)


def test_tilt_series_files(tmp_path):
    tilts = tilt_angles_deg(-60, 60, 3)
    images = torch.randn(len(tilts), 8, 10)
    series = TiltSeries(images=images, tilts_deg=tilts, defocus_um=np.full(len(tilts), -3.0),
                        dose_before_e_A2=np.zeros(len(tilts)),
                        electrons_per_pixel=np.ones(len(tilts)), pixel_size_A=4.2)
    files = write_tilt_series(tmp_path / "ts.mrc", series)
    assert [f.name for f in files] == ["ts.mrc", "ts.tlt", "ts.rawtlt"]
    with mrcfile.open(tmp_path / "ts.mrc") as m:
        assert m.is_image_stack() and int(m.header.mode) == 2
        assert m.data.shape == (41, 8, 10) and m.voxel_size.x == pytest.approx(4.2, abs=1e-4)
        np.testing.assert_allclose(m.data, images.numpy())
    for f in files[1:]:
        np.testing.assert_allclose(np.loadtxt(f), tilts)   # one angle per section, in order
    bad = TiltSeries(images=images[:3], tilts_deg=tilts, defocus_um=series.defocus_um,
                     dose_before_e_A2=series.dose_before_e_A2,
                     electrons_per_pixel=series.electrons_per_pixel, pixel_size_A=4.2)
    with pytest.raises(ValueError, match="do not match its 41 tilt angles"):
        write_tilt_series(tmp_path / "bad.mrc", bad)
