"""Tests of conversenet.io: formats, bit depths, modes, EXIF orientation, errors, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from conversenet.io import (
    ImageFileError,
    jpeg_chroma_subsampling,
    load_image,
    load_image_with_info,
    peek_image,
    pil_to_array,
    save_image,
)

RNG = np.random.default_rng(1234)


def random_image(shape, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max
    return RNG.integers(0, top + 1, size=shape, dtype=np.int64).astype(dtype)


# ---------------------------------------------------------------------------------------
# an independent 16-bit PNG writer using all five PNG filters (to test the decoder)
# ---------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def write_png16_all_filters(path: Path, array: np.ndarray) -> None:
    h, w = array.shape[:2]
    c = 1 if array.ndim == 2 else array.shape[2]
    raw = array.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, -1).astype(np.int64)
    bpp = 2 * c
    prev = np.zeros_like(raw[0])
    rows = []
    for y in range(h):
        kind = y % 5
        row = raw[y]
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        predictor = [0, left, prev, (left + prev) // 2, _paeth(left, prev, upleft)][kind]
        rows.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
        prev = row
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp"])
@pytest.mark.parametrize("shape", [(13, 17), (13, 17, 3)])
def test_lossless_8bit_round_trip(tmp_path, ext, shape):
    img = random_image(shape)
    path = save_image(tmp_path / f"a{ext}", img)
    back = load_image(path)
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [2, 4])
def test_alpha_round_trip(tmp_path, ext, channels):
    img = random_image((9, 11, channels))
    back = load_image(save_image(tmp_path / f"a{ext}", img))
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize(
    ("ext", "shape"),
    [(".png", (13, 17)), (".tif", (13, 17)), (".png", (13, 17, 2))]
    + [(e, (13, 17, c)) for e in (".png", ".tif") for c in (3, 4)],
)
def test_16bit_round_trip_keeps_16_bits(tmp_path, ext, shape):
    img = random_image(shape, np.uint16)
    path = save_image(tmp_path / f"a{ext}", img)
    back, info = load_image_with_info(path)
    assert back.dtype == np.uint16 and info.bit_depth == 16
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_decoder_handles_every_filter(tmp_path, channels):
    img = random_image((11, 7, channels), np.uint16)
    img = img[..., 0] if channels == 1 else img
    write_png16_all_filters(tmp_path / "f.png", img)
    np.testing.assert_array_equal(load_image(tmp_path / "f.png"), img)


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_encoders_read_back_by_pillow(tmp_path, channels):
    # Pillow decodes 16-bit colour to the high byte of every sample: an independent check.
    img = random_image((10, 12, channels), np.uint16)
    save_image(tmp_path / "a.png", img)
    save_image(tmp_path / "a.tif", img)
    for name in ("a.png", "a.tif"):
        with Image.open(tmp_path / name) as pil:
            np.testing.assert_array_equal(np.asarray(pil), (img >> 8).astype(np.uint8))


@pytest.mark.parametrize(("ext", "min_psnr"), [(".jpg", 30.0), (".webp", 30.0)])
def test_lossy_formats_round_trip_closely(tmp_path, ext, min_psnr):
    y, x = np.mgrid[0:64, 0:64]
    img = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    back = load_image(save_image(tmp_path / f"a{ext}", img))
    assert back.shape == img.shape
    mse = np.mean((back.astype(float) - img) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-10)) > min_psnr


# ---------------------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------------------
def test_palette_image_becomes_rgb(tmp_path):
    rgb = random_image((8, 8, 3))
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "p.png")
    img, info = load_image_with_info(tmp_path / "p.png")
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, np.asarray(pal.convert("RGB")))
    assert any("palette" in n for n in info.notes)


def test_palette_with_transparency_becomes_rgba(tmp_path):
    pal = Image.fromarray(random_image((8, 8, 3))).quantize(8)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    img = load_image(tmp_path / "p.png")
    assert img.shape == (8, 8, 4)
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGBA"))
    np.testing.assert_array_equal(img, expected)


def test_gray_palette_becomes_gray(tmp_path):
    gray = Image.fromarray(random_image((8, 8))).convert("P")
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    gray.save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.ndim == 2 and img.dtype == np.uint8


def test_one_bit_image_becomes_uint8(tmp_path):
    bits = Image.fromarray(random_image((8, 8)) > 127)
    assert bits.mode == "1"
    bits.save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")
    assert img.dtype == np.uint8 and set(np.unique(img)) <= {0, 255}


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.fromarray(random_image((8, 8, 3))).convert("CMYK").save(tmp_path / "c.jpg")
    img, info = load_image_with_info(tmp_path / "c.jpg")
    assert img.shape == (8, 8, 3)
    assert any("CMYK" in n for n in info.notes)


def test_pil_to_array_shapes():
    assert pil_to_array(Image.new("LA", (5, 4))).shape == (4, 5, 2)
    assert pil_to_array(Image.new("I;16", (5, 4))).dtype == np.uint16


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    img = Image.fromarray(random_image((6, 9, 3)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(load_image(tmp_path / "o.png"), expected)


def test_exif_orientation_on_16bit_colour(tmp_path):
    img = random_image((6, 9, 3), np.uint16)
    save_image(tmp_path / "a.png", img)
    # re-save with an orientation tag: a raw PNG with an eXIf chunk (Pillow cannot write it)
    data = (tmp_path / "a.png").read_bytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    chunk = _chunk(b"eXIf", exif.tobytes()[6:] if exif.tobytes()[:4] == b"Exif" else exif.tobytes())
    iend = data.rindex(b"IEND") - 4
    (tmp_path / "b.png").write_bytes(data[:iend] + chunk + data[iend:])
    np.testing.assert_array_equal(load_image(tmp_path / "b.png"), np.rot90(img, -1))


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("this is not a picture")
    with pytest.raises(ImageFileError, match="not an image"):
        load_image(tmp_path / "x.png")


def test_empty_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ImageFileError, match="empty"):
        load_image(tmp_path / "x.png")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file(tmp_path, ext):
    path = save_image(tmp_path / f"a{ext}", random_image((64, 64, 3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match="cannot decode"):
        load_image(path)


def png_with_rows(path: Path, width: int, height: int, rows: int, interlace: int = 0) -> Path:
    """An 8-bit gray PNG declaring ``height`` rows whose (valid, complete) zlib stream holds
    ``rows`` rows of data (the raw bytes of an interlaced image, ``rows`` rows' worth)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    raw = b"".join(b"\x00" + bytes([(7 * r) % 256]) * width for r in range(rows))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(
    ("width", "height", "rows", "interlace", "message"),
    [
        (64, 192, 100, 0, "holds 100 of the 192 rows"),
        (16000, 16000, 3, 0, "holds 3 of the 16000 rows"),  # 130 bytes declaring 256 Mpx
        (64, 192, 150, 1, "holds 9,750 of the 12,648 bytes"),
    ],
)
def test_png_with_missing_rows_is_refused(tmp_path, width, height, rows, interlace, message):
    """Pillow decodes such a file without complaint, the missing rows black."""
    path = png_with_rows(tmp_path / "short.png", width, height, rows, interlace)
    for read in (load_image, peek_image):
        with pytest.raises(ImageFileError, match=f"damaged PNG: its image data {message}"):
            read(path)


def test_png_with_every_row_reads(tmp_path):
    path = png_with_rows(tmp_path / "whole.png", 64, 192, 192)
    image = load_image(path)
    assert image.shape == (192, 64) and peek_image(path) == (np.uint8, 1)
    np.testing.assert_array_equal(image[:, 0], (7 * np.arange(192)) % 256)


def test_peek_names_an_empty_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ImageFileError, match=r"empty file \(0 bytes\)"):
        peek_image(tmp_path / "x.png")


def test_peek_sees_16bit_gray_and_alpha(tmp_path):
    """Pillow opens a 16-bit gray + alpha PNG as RGBA; load_image returns 2 channels."""
    path = save_image(tmp_path / "la.png", random_image((6, 5, 2), np.uint16))
    assert load_image(path).shape == (6, 5, 2)
    assert peek_image(path) == (np.uint16, 2)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_floating_point_colour_tiff_round_trip(tmp_path, channels):
    """Pillow cannot read these: tifffile does (float64 is read as float32)."""
    image = RNG.random((6, 5, channels)).astype(np.float32)
    path = save_image(tmp_path / "f.tif", image)
    np.testing.assert_array_equal(load_image(path), image)
    assert peek_image(path) == (np.float32, channels)
    if channels == 3:
        tifffile.imwrite(tmp_path / "f64.tif", image.astype(np.float64), photometric="rgb")
        np.testing.assert_array_equal(load_image(tmp_path / "f64.tif"), image)


def test_unsupported_tiff_names_its_kind(tmp_path):
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((4, 4), np.complex64))
    for read in (load_image, peek_image):
        with pytest.raises(ImageFileError, match=r"complex64 samples.*is not supported"):
            read(tmp_path / "c.tif")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageFileError, match="folder"):
        load_image(tmp_path)


# ---------------------------------------------------------------------------------------
# saving: no clobbering, atomicity, clear refusals
# ---------------------------------------------------------------------------------------
def test_save_never_overwrites_without_permission(tmp_path):
    path = save_image(tmp_path / "a.png", random_image((4, 4)))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        save_image(path, random_image((4, 4)))
    assert path.read_bytes() == before
    new = random_image((4, 4))
    save_image(path, new, overwrite=True)
    np.testing.assert_array_equal(load_image(path), new)


def test_save_to_the_longest_name_the_file_system_takes(tmp_path):
    """The temporary file's name must fit wherever the final name fits."""
    name = "a" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 4) + ".png"
    image = random_image((4, 4))
    np.testing.assert_array_equal(load_image(save_image(tmp_path / name, image)), image)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_save_leaves_no_temporary_files_and_normal_permissions(tmp_path):
    save_image(tmp_path / "a.png", random_image((4, 4)))
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    import conversenet.io as cio

    def broken_write(fh, *args, **kwargs):
        fh.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(cio, "_write", broken_write)
    with pytest.raises(KeyboardInterrupt):
        save_image(tmp_path / "a.png", random_image((4, 4)))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    import conversenet.io as cio

    old = random_image((4, 4))
    save_image(tmp_path / "a.png", old)

    def broken_write(fh, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cio, "_write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        save_image(tmp_path / "a.png", random_image((4, 4)), overwrite=True)
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), old)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


@pytest.mark.parametrize(
    ("name", "array", "message"),
    [
        ("a.jpg", random_image((4, 4), np.uint16), "16-bit"),
        ("a.webp", random_image((4, 4, 3), np.uint16), "16-bit"),
        ("a.jpg", random_image((4, 4, 4)), "alpha"),
        ("a.bmp", random_image((4, 4, 2)), "alpha"),
        ("a.xyz", random_image((4, 4)), "unknown image extension"),
        ("a.tif", random_image((4, 4, 2), np.uint16), "gray \\+ alpha"),
    ],
)
def test_save_refuses_what_the_format_cannot_hold(tmp_path, name, array, message):
    with pytest.raises(ImageFileError, match=message):
        save_image(tmp_path / name, array)
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_or_non_folder(tmp_path):
    with pytest.raises(ImageFileError, match="does not exist"):
        save_image(tmp_path / "missing" / "a.png", random_image((4, 4)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageFileError, match="not a folder"):
        save_image(tmp_path / "file" / "a.png", random_image((4, 4)))


@pytest.mark.parametrize(
    ("array", "error"),
    [
        (np.zeros((0, 4), np.uint8), ValueError),
        (np.zeros((4, 4, 5), np.uint8), ValueError),
        (np.zeros((4, 4), np.int32), TypeError),
        (np.zeros((4, 4, 3), np.float64), TypeError),
        (np.zeros((4, 4, 3), np.float32), ImageFileError),  # floating point: TIFF only
        ([[0, 1]], TypeError),
    ],
)
def test_save_rejects_bad_arrays(tmp_path, array, error):
    with pytest.raises(error):
        save_image(tmp_path / "a.png", array)


def test_16bit_colour_png_keeps_its_icc_profile(tmp_path):
    img = random_image((6, 5, 3), np.uint16)
    profile = bytes(range(256)) * 3  # any bytes: the profile is stored, not interpreted
    back, info = load_image_with_info(save_image(tmp_path / "icc.png", img, icc_profile=profile))
    np.testing.assert_array_equal(back, img)
    assert info.icc_profile == profile


# ---------------------------------------------------------------------------------------
# a JPEG's chroma subsampling (it decides how colour JPEGs are denoised)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("pillow", "factors"), [(0, (1, 1)), (1, (1, 2)), (2, (2, 2))])
def test_jpeg_chroma_subsampling_is_read_from_the_file(tmp_path, pillow, factors):
    Image.fromarray(random_image((16, 24, 3))).save(tmp_path / "c.jpg", subsampling=pillow)
    assert load_image_with_info(tmp_path / "c.jpg")[1].chroma_subsampling == factors
    with Image.open(tmp_path / "c.jpg") as img:
        assert jpeg_chroma_subsampling(img) == factors


def test_jpeg_chroma_subsampling_turns_with_the_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turned by 90 degrees: 4:2:2 stored is 2:1 vertically upright
    Image.fromarray(random_image((16, 24, 3))).save(tmp_path / "r.jpg", subsampling=1, exif=exif)
    image, info = load_image_with_info(tmp_path / "r.jpg")
    assert image.shape == (24, 16, 3) and info.chroma_subsampling == (2, 1)


@pytest.mark.parametrize(("name", "mode"), [("g.jpg", "L"), ("k.jpg", "CMYK"), ("c.png", "RGB")])
def test_no_chroma_subsampling_outside_colour_jpegs(tmp_path, name, mode):
    Image.fromarray(random_image((16, 24, 3))).convert(mode).save(tmp_path / name)
    assert load_image_with_info(tmp_path / name)[1].chroma_subsampling is None
