"""Reading and writing images as NumPy arrays.

:func:`load_image` returns an ``H×W`` (gray) or ``H×W×C`` array (``C`` = 2 gray + alpha,
3 RGB, 4 RGBA) of dtype ``uint8`` or ``uint16`` (``float32`` for floating-point TIFFs),
with the EXIF orientation applied. Palette images become RGB (RGBA when the palette has
transparency, gray when every palette entry is gray); 1-bit images become ``uint8``
0/255; CMYK, YCbCr, LAB and HSV images become RGB.

:func:`save_image` writes such an array atomically (a temporary file in the same folder,
then a rename) and never replaces an existing file unless ``overwrite=True``.

Formats: PNG, JPEG, BMP, TIFF and WebP (anything else Pillow reads can be loaded too).
16-bit images are kept at 16 bits, gray and colour, in PNG and TIFF: Pillow only decodes
16-bit colour at 8 bits, so those files are decoded twice (high and low bytes) and
written by a small encoder in this module.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFileError",
    "ImageInfo",
    "array_to_pil",
    "is_image_file",
    "load_image",
    "load_image_with_info",
    "pil_to_array",
    "sample_image",
    "save_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
_ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")  # formats that store an alpha channel
_ICC_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP")
# Pillow raw modes for 16-bit colour data, and the one that reads the other byte of each sample.
_SWAP_16BIT = {
    "RGB;16B": "RGB;16L",
    "RGB;16L": "RGB;16B",
    "RGBA;16B": "RGBA;16L",
    "RGBA;16L": "RGBA;16B",
}
_EXIF_ORIENTATION = 0x0112


class ImageFileError(ValueError):
    """An image file that cannot be read or written (the message names the file and why)."""


@dataclass
class ImageInfo:
    """What :func:`load_image_with_info` learnt about a file besides its pixels.

    Attributes:
        format: Pillow's format name (``"PNG"``, ``"JPEG"``, ...).
        mode: Pillow's mode of the file before conversion (``"P"``, ``"I;16"``, ...).
        bit_depth: 8 or 16 (32 for floating point).
        icc_profile: the embedded ICC colour profile, if any.
        notes: conversions made while loading (palette to RGB, first frame only, ...).
    """

    format: str | None = None
    mode: str | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)


def sample_image() -> np.ndarray:
    """The 192×192 RGB sample photo shipped with the package (CC0; see assets/SOURCE.md).

    Example:
        >>> sample_image().shape
        (192, 192, 3)
    """
    from importlib import resources

    with resources.as_file(resources.files("conversenet") / "assets" / "chelsea.png") as path:
        return load_image(path)


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has one of the :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into a NumPy array.

    Args:
        path: the file (PNG, JPEG, BMP, TIFF, WebP or any other format Pillow reads).

    Returns:
        ``uint8`` or ``uint16`` array (``float32`` for floating-point TIFFs).

    Shape:
        ``(H, W)`` gray, ``(H, W, 2)`` gray + alpha, ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA.

    Raises:
        FileNotFoundError: no such file.
        ImageFileError: not an image, truncated or corrupt, empty, or an unsupported mode.

    Example:
        >>> img = load_image("photo.png")  # doctest: +SKIP
        >>> img.shape, img.dtype  # doctest: +SKIP
        ((480, 640, 3), dtype('uint8'))
    """
    return load_image_with_info(path)[0]


def load_image_with_info(path: str | os.PathLike) -> tuple[np.ndarray, ImageInfo]:
    """Like :func:`load_image`, also returning an :class:`ImageInfo` about the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ImageFileError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            info = ImageInfo(
                format=img.format, mode=img.mode, icc_profile=img.info.get("icc_profile")
            )
            if getattr(img, "n_frames", 1) > 1:
                info.notes.append(f"{img.n_frames} frames: only the first is used")
            array = _decode_16bit_colour(img, path)  # before getexif(), which loads PNGs
            orientation = _exif_orientation(img)
            if array is None:
                img.load()
                array = pil_to_array(img, info.notes)
    except UnidentifiedImageError as err:
        raise ImageFileError(f"{path}: not an image file, or a format Pillow cannot read") from err
    except ImageFileError as err:
        raise ImageFileError(f"{path}: {err}") from err
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error) as err:
        raise ImageFileError(f"{path}: cannot decode the image ({_reason(err)})") from err
    if array.size == 0:
        raise ImageFileError(f"{path}: the image is empty ({array.shape[1]}x{array.shape[0]})")
    array = _apply_orientation(array, orientation)
    info.bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)
    return np.ascontiguousarray(array), info


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return text or type(err).__name__


def _exif_orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels upright, as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, 1)
    return array


def _replace_rawmode(tile, rawmode: str):
    args = tile[3]
    if isinstance(args, str):
        new_args = rawmode
    elif isinstance(args, tuple) and args and isinstance(args[0], str):
        new_args = (rawmode, *args[1:])
    else:
        raise ImageFileError("unexpected decoder arguments")
    if hasattr(tile, "_replace"):
        return tile._replace(args=new_args)
    return (*tile[:3], new_args)


def _tile_rawmode(tile) -> str | None:
    args = tile[3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _decode_16bit_colour(img: Image.Image, path: Path) -> np.ndarray | None:
    """Decode 16-bit RGB/RGBA (and 16-bit gray + alpha PNG) at full depth, else None.

    Pillow unfilters/decompresses the whole 16-bit stream but keeps one byte per sample;
    decoding a second time with the other byte order's raw mode yields the other byte.
    """
    tiles = list(getattr(img, "tile", None) or [])
    rawmodes = {_tile_rawmode(t) for t in tiles}
    if len(rawmodes) != 1:
        return None
    rawmode = rawmodes.pop()
    if rawmode in _SWAP_16BIT:
        first = _load_with_rawmode(path, None)
        second = _load_with_rawmode(path, _SWAP_16BIT[rawmode])
        return (first.astype(np.uint16) << 8) | second.astype(np.uint16)
    if rawmode == "LA;16B" and img.format == "PNG":
        # 4 bytes per pixel (L hi, L lo, A hi, A lo): the 8-bit RGBA raw mode reads them all.
        raw = _load_with_rawmode(path, "RGBA").astype(np.uint16)
        return np.stack([(raw[..., 0] << 8) | raw[..., 1], (raw[..., 2] << 8) | raw[..., 3]], -1)
    return None


def _load_with_rawmode(path: Path, rawmode: str | None) -> np.ndarray:
    with Image.open(path) as img:
        if rawmode is not None:
            img.tile = [_replace_rawmode(t, rawmode) for t in img.tile]
        img.load()
        return np.asarray(img)


def _gray_palette(img: Image.Image) -> bool:
    palette = img.getpalette() or []
    rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3) if palette else np.zeros((0, 3))
    return len(rgb) > 0 and bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def pil_to_array(img: Image.Image, notes: list[str] | None = None) -> np.ndarray:
    """Convert a PIL image to the arrays :func:`load_image` returns (see its shapes).

    ``notes``, when given, receives a line for every conversion that changes the mode
    (palette to RGB, CMYK to RGB, ...).
    """
    notes = notes if notes is not None else []
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(img)
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in img.info
        if transparent:
            target = "LA" if _gray_palette(img) else "RGBA"
        else:
            target = "L" if _gray_palette(img) else "RGB"
        notes.append(f"palette image converted to {target}")
        return np.asarray(img.convert(target))
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        array = np.asarray(img)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ImageFileError(
                "32-bit integer image with values outside 0..65535 is not supported "
                f"(range {array.min()}..{array.max()})"
            )
        notes.append("32-bit integer image stored as 16 bits")
        return array.astype(np.uint16)
    if mode == "F":
        return np.asarray(img).astype(np.float32)
    if mode == "La":
        return np.asarray(img.convert("LA"))
    if mode in ("RGBa",):
        return np.asarray(img.convert("RGBA"))
    if mode in ("RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        if mode != "RGBX":
            notes.append(f"{mode} image converted to RGB")
        return np.asarray(img.convert("RGB"))
    raise ImageFileError(f"unsupported image mode {mode!r}")


# ---------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------
def array_to_pil(array: np.ndarray) -> Image.Image:
    """Convert an 8-bit array (or a 16-bit gray / float32 gray array) to a PIL image.

    16-bit colour has no Pillow mode; :func:`save_image` writes it with its own encoder.
    """
    array = _check_array(array)
    if array.dtype == np.uint16:
        if array.ndim != 2:
            raise ValueError("Pillow has no mode for 16-bit colour images; use save_image")
        return Image.fromarray(np.ascontiguousarray(array))
    if array.dtype == np.float32:
        return Image.fromarray(np.ascontiguousarray(array.reshape(array.shape[:2])))
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(array[..., 0]))
    return Image.fromarray(np.ascontiguousarray(array))


def _check_array(array) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected a NumPy array, got {type(array).__name__}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(
            "expected an image array of shape (H, W) or (H, W, C) with C in 1..4, "
            f"got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"cannot save an empty image of shape {array.shape}")
    if array.dtype == np.float32 and array.ndim == 3 and array.shape[2] != 1:
        raise TypeError("float32 images can only be saved as gray TIFF; convert to uint8/uint16")
    if array.dtype not in (np.uint8, np.uint16, np.float32):
        raise TypeError(
            f"expected a uint8 or uint16 image array, got dtype {array.dtype}; "
            "scale floats in [0, 1] to uint8 with (x * 255).round().astype(np.uint8)"
        )
    return array


def save_image(
    path: str | os.PathLike,
    array: np.ndarray,
    overwrite: bool = False,
    *,
    quality: int = 95,
    icc_profile: bytes | None = None,
) -> Path:
    """Write an image array to ``path``, in the format its extension names.

    The file is written to a temporary file in the same folder and then renamed, so an
    interrupted run never leaves a half-written image behind.

    Args:
        path: destination, ending in one of :data:`IMAGE_EXTENSIONS`.
        array: ``uint8`` or ``uint16`` array of shape ``(H, W)`` or ``(H, W, C)``,
            ``C`` in 1..4 (2 = gray + alpha, 4 = RGBA). 16-bit needs PNG or TIFF.
        overwrite: replace an existing file (otherwise raise ``FileExistsError``).
        quality: JPEG/WebP quality.
        icc_profile: colour profile to embed (PNG, JPEG, TIFF, WebP).

    Returns:
        The path written.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is false.
        ImageFileError: unknown extension, a format that cannot hold the array, or a
            destination folder that does not exist or cannot be written.
    """
    path = Path(path)
    array = _check_array(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageFileError(
            f"{path}: unknown image extension {path.suffix!r}; "
            f"use one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    channels = 1 if array.ndim == 2 else array.shape[2]
    if array.dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        raise ImageFileError(f"{path}: {fmt} cannot store 16-bit images; save as .png or .tif")
    if array.dtype == np.uint16 and fmt == "TIFF" and channels == 2:
        raise ImageFileError(f"{path}: 16-bit gray + alpha is not supported in TIFF; use .png")
    if array.dtype == np.float32 and fmt != "TIFF":
        raise ImageFileError(f"{path}: floating-point images can only be saved as .tif")
    if channels in (2, 4) and fmt not in _ALPHA_FORMATS:
        raise ImageFileError(
            f"{path}: {fmt} cannot store an alpha channel; save as .png, .tif or .webp"
        )
    if fmt == "WEBP" and channels == 2:
        array = np.concatenate([np.repeat(array[..., :1], 3, axis=2), array[..., 1:]], axis=2)
    if path.exists() and not overwrite:
        raise _exists_error(path) from None
    folder = path.parent
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise ImageFileError(f"{path}: cannot write, the folder {folder} {reason}")

    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise ImageFileError(f"{path}: cannot write to {folder} ({_reason(err)})") from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, array, fmt, quality, icc_profile)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_clobber(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")


def _rename_no_clobber(tmp: Path, path: Path) -> None:
    """Rename without ever replacing a file that appeared in the meantime."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # no hard links on this file system
        if path.exists():
            raise _exists_error(path) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _write(fh, array: np.ndarray, fmt: str, quality: int, icc_profile: bytes | None) -> None:
    if array.dtype == np.uint16 and array.ndim == 3:
        if fmt == "PNG":
            fh.write(encode_png16(array, icc_profile))
        else:
            fh.write(encode_tiff16(array))
        return
    img = array_to_pil(array)
    options: dict = {}
    if icc_profile and fmt in _ICC_FORMATS and img.mode not in ("I;16", "F"):
        options["icc_profile"] = icc_profile
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality)
    elif fmt == "PNG":
        options.update(compress_level=6)
    img.save(fh, format=fmt, **options)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png16(array: np.ndarray, icc_profile: bytes | None = None) -> bytes:
    """Encode a ``uint16`` (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) array as a 16-bit PNG.

    Every row but the first uses the PNG "Up" filter, which suits natural images.
    """
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(array, dtype=">u2").view(np.uint8).reshape(h, w * channels * 2)
    filtered = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # "Up": each byte minus the byte above, modulo 256
    filtered[0, 0] = 0
    filtered[0, 1:] = rows[0]
    filtered[1:, 1:] = rows[1:] - rows[:-1]  # uint8 arithmetic wraps modulo 256
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header)]
    if icc_profile:
        parts.append(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile)))
    parts.append(_png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)))
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def encode_tiff16(array: np.ndarray) -> bytes:
    """Encode a ``uint16`` (H, W, 3) or (H, W, 4) array as an uncompressed 16-bit TIFF."""
    h, w, channels = array.shape
    if channels not in (3, 4):
        raise ValueError(f"expected 3 (RGB) or 4 (RGBA) channels, got {channels}")
    pixels = np.ascontiguousarray(array, dtype="<u2").tobytes()
    entries: list[tuple[int, int, int, int | bytes]] = []  # tag, type, count, value
    bits = struct.pack(f"<{channels}H", *([16] * channels))
    entries += [
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, channels, bits),
        (259, 3, 1, 1),
        (262, 3, 1, 2),  # RGB
        (273, 4, 1, 0),  # strip offset, patched below
        (277, 3, 1, channels),
        (278, 4, 1, h),
        (279, 4, 1, len(pixels)),
        (284, 3, 1, 1),
    ]
    if channels == 4:
        entries.append((338, 3, 1, 2))  # one extra sample: unassociated alpha
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_offset = ifd_offset + ifd_size
    extra = b""
    strip_offset = extra_offset + len(bits) + (len(bits) % 2)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = strip_offset
        if isinstance(value, bytes):
            if len(value) <= 4:
                field_value = value.ljust(4, b"\x00")
            else:
                field_value = struct.pack("<I", extra_offset + len(extra))
                extra += value
        elif kind == 3:
            field_value = struct.pack("<HH", value, 0)
        else:
            field_value = struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + field_value
    ifd += struct.pack("<I", 0)
    extra = extra.ljust(strip_offset - extra_offset, b"\x00")
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + extra + pixels
