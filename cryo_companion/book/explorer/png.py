"""A dependency-free PNG encoder for 8-bit greyscale frames."""
from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["encode_png_gray"]


def encode_png_gray(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as an 8-bit greyscale PNG (stdlib only: zlib + struct).

    Parameters
    ----------
    image : np.ndarray
        `(H, W)` uint8; row 0 is the top of the picture.

    Returns
    -------
    bytes
        A complete PNG file.

    Raises
    ------
    ValueError
        If ``image`` is not a non-empty 2-D uint8 array.
    """
    img = np.ascontiguousarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {img.dtype} {img.shape}")
    h, w = img.shape
    if h == 0 or w == 0:
        raise ValueError(f"empty image {img.shape}")

    def chunk(kind: bytes, data: bytes) -> bytes:  # length, type, data, CRC
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    # filter type 0 (none) on every scanline
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))
