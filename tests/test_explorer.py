"""Tests of the parameter explorer: frames, the precomputed grid, the static page, the widget."""
from __future__ import annotations

import base64
import re
import struct
import zlib

import numpy as np
import pytest

from cryo_companion.book import explorer as ex

D = 12
CLASSES = ["membrane", "proteasome", "TRiC", "ribosome"]


def _decode_png_gray(data: bytes) -> np.ndarray:
    """Minimal decoder for the 8-bit greyscale, filter-0 PNGs that encode_png_gray writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    assert np.all(raw[:, 0] == 0)
    return raw[:, 1:]


def _stand_in_render(params):
    """Sphere whose radius encodes the class, plus fixed-seed noise at the requested SNR,
    blurred more for larger wedge (a stand-in: only the bookkeeping is tested here)."""
    n = len(params["class"])
    z, y, x = np.mgrid[:D, :D, :D] - D // 2
    noise = np.random.default_rng(0).standard_normal((D, D, D))
    out = np.empty((n, D, D, D))
    for i in range(n):
        r = 2 + params["class"][i]
        v = (x**2 + y**2 + z**2 < r**2).astype(float) + 0.01 * params["wedge_deg"][i] * x
        out[i] = v + noise * np.sqrt(v.var() / params["snr"][i])
    return out


@pytest.fixture(scope="module")
def small_axes():
    return ex.default_axes(CLASSES[:2], snr=(0.1, 10.0), wedge_deg=(0.0, 30.0, 50.0),
                           defocus_um=(-6.0,), cs_mm=(2.7,))


@pytest.fixture(scope="module")
def grid(small_axes):
    return ex.precompute_frames(_stand_in_render, small_axes, voxel_size_A=13.68,
                                progress=False, batch_size=5)


def test_png_roundtrip_and_validation():
    img = (np.arange(35).reshape(5, 7) * 7).astype(np.uint8)
    assert np.array_equal(_decode_png_gray(ex.encode_png_gray(img)), img)
    with pytest.raises(ValueError, match="uint8"):
        ex.encode_png_gray(img.astype(float))


def test_frame_image_layout_and_orientation():
    v = np.zeros((D, D, D))
    v[D // 2, -1, 0] = 1.0  # in the x-y slice: top row (y max), left column (x = 0)
    img = ex.frame_image(v, percentile=0.0)
    assert img.shape == (D, 3 * D + 4)
    # panels separated by white 2-pixel gaps
    assert np.all(img[:, D:D + 2] == 255) and np.all(img[:, 2 * D + 2:2 * D + 4] == 255)
    # y points up: the voxel at y = D-1 appears in image row 0
    assert img[0, 0] == 255 and img[-1, 0] == 0
    f = ex.frame_image(v, fourier=True)
    assert f.shape == (2 * D + 2, 3 * D + 4)
    with pytest.raises(ValueError, match="NaN"):
        ex.frame_image(np.full((D, D, D), np.nan))
    with pytest.raises(ValueError, match="levels"):
        ex.frame_image(v, levels=1)


def test_frame_levels_quantise():
    v = np.random.default_rng(0).standard_normal((D, D, D))
    assert len(np.unique(ex.frame_image(v, levels=8))) <= 8 + 1  # + white gap


def test_grid_order_matches_render_calls(grid, small_axes):
    assert grid.shape == (2, 2, 3, 1, 1)
    assert len(grid.frames) == 12 and grid.box == D
    # C order: frame index of (class 1, snr 0, wedge 2) must be the frame of those values
    i = grid.index(**{"class": 1, "snr": 0, "wedge_deg": 2})
    assert i == 1 * 6 + 0 * 3 + 2
    expected = _stand_in_render({"class": np.array([1.0]), "snr": np.array([0.1]),
                                 "wedge_deg": np.array([50.0]),
                                 "defocus_um": np.array([-6.0]), "cs_mm": np.array([2.7])})[0]
    assert grid.frames[i] == ex.frame_png(expected, fourier=True)
    assert len(set(grid.frames)) == 12  # every combination is a different picture
    with pytest.raises(IndexError):
        grid.index(snr=2)
    with pytest.raises(KeyError):
        grid.index(bogus=0)


def test_precompute_validates(small_axes):
    with pytest.raises(ValueError, match="max_frames"):
        ex.precompute_frames(_stand_in_render, small_axes, voxel_size_A=1.0, max_frames=5)
    with pytest.raises(ValueError, match=r"\(N, D, D, D\)"):
        ex.precompute_frames(lambda p: np.zeros((1, D, D, D)), small_axes, voxel_size_A=1.0,
                             progress=False)
    with pytest.raises(ValueError, match="no values"):
        ex.ExplorerAxis("snr", "SNR", ())
    with pytest.raises(ValueError, match="> 0"):
        ex.ExplorerAxis("snr", "SNR", (0.0, 1.0), log=True)


def test_static_html_is_self_contained(grid):
    page = ex.static_explorer_page(grid, title="t")
    # no external resource of any kind: no src/href to a URL, no imports, no fetches
    assert not re.search(r"(?i)(src|href)\s*=\s*[\"']?(https?:|//)", page)
    assert not re.search(r"(?i)https?://", page)
    for word in ("fetch(", "XMLHttpRequest", "import(", "<link", "@import", "require("):
        assert word not in page
    # every frame is embedded, once, as base64 of the exact PNG
    for f in grid.frames:
        assert page.count(base64.b64encode(f).decode()) >= 1
    # one control per axis, class as a drop-down with the class names
    assert page.count("data-axis=\"class\"") == 1 and "<option value=\"1\">proteasome" in page
    assert len(re.findall(r'<input type="range" data-axis="(\w+)"', page)) == 4
    # the script cannot terminate its own <script> element early
    script = page.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    assert "</" not in script


def test_static_html_ids_and_initial(grid):
    a = ex.static_explorer_html(grid)
    b = ex.static_explorer_html(grid)
    ida = re.search(r'id="([^"]+)"', a).group(1)
    assert ida != re.search(r'id="([^"]+)"', b).group(1)
    h = ex.static_explorer_html(grid, element_id="x1", initial={"snr": 1})
    assert re.search(r'data-axis="snr" min="0" max="1" step="1" value="1"', h)
    with pytest.raises(ValueError, match="element_id"):
        ex.static_explorer_html(grid, element_id='a"><script>')
    with pytest.raises(IndexError):
        ex.static_explorer_html(grid, initial={"snr": 5})


def test_default_grid_fits_the_size_budget():
    """The chapter's default grid at 40³ with Fourier rows stays under 3 MB of HTML."""
    axes = ex.default_axes(CLASSES)
    n = int(np.prod([len(a.values) for a in axes]))
    rng = np.random.default_rng(0)
    vol = rng.standard_normal((40, 40, 40))  # pure noise: the least compressible frame
    png = ex.frame_png(vol, fourier=True)
    estimated = n * len(base64.b64encode(png))
    assert 50 <= n <= 1000
    assert estimated < 3e6, f"{n} frames of {len(png)} B: {estimated / 1e6:.2f} MB"


def test_live_explorer_updates_image(small_axes):
    calls = []

    def render(params):
        calls.append({k: float(v[0]) for k, v in params.items()})
        return _stand_in_render(params)

    box = ex.live_explorer(render, small_axes)
    first = box.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and len(calls) == 1
    assert calls[0]["snr"] == pytest.approx(10.0)  # the middle grid value (index 1 of 2)
    box.controls["snr"].value = 0.05
    assert len(calls) == 2 and calls[-1]["snr"] == pytest.approx(0.05)
    assert box.image.value != first
    box.controls["class"].value = 1
    assert calls[-1]["class"] == 1.0
    assert "proteasome" in box.children[-1].value
