"""Reading and writing images as NumPy arrays.

:func:`load_image` returns an ``H×W`` (gray) or ``H×W×C`` array (``C`` = 2 gray + alpha,
3 RGB, 4 RGBA) of dtype ``uint8`` or ``uint16`` (``float32`` for floating-point TIFFs),
with the EXIF orientation applied. Palette images become RGB (RGBA when the palette has
transparency, gray when every palette entry is gray); 1-bit images become ``uint8``
0/255; CMYK, YCbCr, LAB and HSV images become RGB.

:func:`save_image` writes such an array atomically (a temporary file in the same folder,
then a rename) and never replaces an existing file unless ``overwrite=True``.

Formats: PNG, JPEG, BMP, TIFF and WebP (anything else Pillow reads can be loaded too).
16-bit images are kept at 16 bits, gray and colour, in PNG and TIFF. Pillow decodes and
encodes everything but 16-bit colour (and 16-bit gray + alpha), which it only handles at
8 bits: those go through pypng (PNG) and tifffile (TIFF).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageFileError",
    "ImageInfo",
    "array_to_pil",
    "check_savable",
    "is_image_file",
    "jpeg_chroma_subsampling",
    "load_image",
    "load_image_with_info",
    "missing_folder",
    "peek_image",
    "pil_to_array",
    "remove_empty_folders",
    "save_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The default largest image (in pixels) that is read: 16384 × 16384. Larger files are
#: refused as possible decompression bombs unless the limit is raised.
MAX_PIXELS = 16384 * 16384

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
        chroma_subsampling: a colour JPEG's chroma subsampling (:func:`jpeg_chroma_subsampling`
            of the upright image), ``None`` for other files.
        notes: conversions made while loading (palette to RGB, first frame only, ...).
    """

    format: str | None = None
    mode: str | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    chroma_subsampling: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has one of the :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
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
    return load_image_with_info(path, max_pixels)[0]


def load_image_with_info(
    path: str | os.PathLike, max_pixels: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Like :func:`load_image`, also returning an :class:`ImageInfo` about the file.

    ``max_pixels`` (default :data:`MAX_PIXELS`) guards against decompression bombs: a
    larger image is refused with an :class:`ImageFileError` that says how to raise it.
    """
    path = Path(path)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    img = _open(path, limit)
    if img is None:  # a TIFF that Pillow cannot read (floating-point colour, ...)
        return _load_tiff(path)
    try:
        with img:
            info = ImageInfo(
                format=img.format, mode=img.mode, icc_profile=img.info.get("icc_profile")
            )
            if getattr(img, "n_frames", 1) > 1:
                info.notes.append(f"{img.n_frames} frames: only the first is used")
            array = _decode_16bit_colour(img, path)  # before getexif(), which loads PNGs
            orientation = _exif_orientation(img)
            info.chroma_subsampling = jpeg_chroma_subsampling(img)
            if info.chroma_subsampling is not None and orientation >= 5:  # turned by 90°
                info.chroma_subsampling = info.chroma_subsampling[::-1]
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


def _check_file(path: Path) -> None:
    """The checks of a path before its contents: it exists, is a file and is not empty."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ImageFileError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: empty file (0 bytes)")


def _open(path: Path, limit: int) -> Image.Image | None:
    """Open ``path`` with Pillow (header only) after checking the file and, for a PNG, that
    its image data is complete; None for a TIFF that Pillow cannot identify."""
    _check_file(path)
    try:
        with warnings.catch_warnings(), _pixel_limit(limit):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _bomb_error(path, limit) from None
    except UnidentifiedImageError as err:
        if _is_tiff(path):
            return None
        raise ImageFileError(f"{path}: not an image file, or a format Pillow cannot read") from err
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error) as err:
        raise ImageFileError(f"{path}: cannot decode the image ({_reason(err)})") from err
    try:
        if img.format == "PNG":
            _check_png_data(path)
        if img.format == "TIFF" and _float_samples(img) > 1:  # Pillow reads one of them
            img.close()
            return None
    except BaseException:
        img.close()
        raise
    return img


def _bomb_error(path: Path, limit: int) -> ImageFileError:
    return ImageFileError(
        f"{path}: the image has more than {limit:,} pixels, the limit that guards against "
        "decompression bombs; if you trust the file, raise it (--max-pixels N, or max_pixels=)"
    )


@contextlib.contextmanager
def _pixel_limit(limit: int):
    """Pillow's decompression-bomb limit is a module global: set it while opening a file."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return text or type(err).__name__


def jpeg_chroma_subsampling(img: Image.Image) -> tuple[int, int] | None:
    """How much a colour JPEG's chroma planes are subsampled, as stored: (vertical,
    horizontal) factors, ``(2, 2)`` for 4:2:0, ``(1, 2)`` for 4:2:2, ``(1, 1)`` for 4:4:4;
    ``None`` for a gray or CMYK JPEG and for any other format."""
    layers = getattr(img, "layer", None) if img.format == "JPEG" else None
    if not layers or len(layers) != 3 or img.info.get("adobe_transform") == 0:  # 0: RGB
        return None
    (_, luma_h, luma_v, _), *chroma = layers
    if any(luma_h % h or luma_v % v for _, h, v, _ in chroma):
        return None
    return luma_v // max(v for _, _, v, _ in chroma), luma_h // max(h for _, h, _, _ in chroma)


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


_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # samples per pixel of each PNG colour type
# Adam7: (first row, first column, row step, column step) of each of the seven passes
_ADAM7 = (
    (0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)
)  # fmt: skip


def _check_png_data(path: Path) -> None:
    """Refuse a PNG whose image data holds fewer rows than its header declares.

    Pillow decodes such a file without complaint, the missing rows black (a valid zlib
    stream that simply ends early); a few hundred bytes can so declare a 16000×16000
    image. The data is inflated in steps and counted, never held.
    """
    with open(path, "rb") as file:
        found, expected, header = _count_png_data(path, file)
    if found < expected:
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
        if interlace:
            held = f"{found:,} of the {expected:,} bytes"
        else:
            row = 1 + -(-width * depth * _PNG_SAMPLES[colour] // 8)
            held = f"{found // row} of the {height} rows"
        raise ImageFileError(
            f"{path}: a damaged PNG: its image data holds {held} its header declares (a "
            "truncated or corrupt file)"
        )


def _count_png_data(path: Path, file) -> tuple[int, int, bytes]:
    """(bytes the image data inflates to, stopping at what the header declares; that
    declared size; the header)."""
    try:
        chunks = png.Reader(file=file).chunks()
        kind, header = next(chunks)
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
        bits = depth * _PNG_SAMPLES[colour]
        if interlace:
            passes = [
                (-(-(height - r0) // dr), -(-(width - c0) // dc)) for r0, c0, dr, dc in _ADAM7
            ]
        else:
            passes = [(height, width)]
        expected = sum(rows * (1 + -(-cols * bits // 8)) for rows, cols in passes if cols > 0)
        inflate, found = zlib.decompressobj(), 0
        for kind, data in chunks:
            if kind == b"IEND" or found >= expected:
                break
            while kind == b"IDAT" and data and found < expected:
                found += len(inflate.decompress(data, 1 << 22))
                data = inflate.unconsumed_tail
    except (png.Error, KeyError, StopIteration, struct.error, zlib.error) as err:
        raise ImageFileError(f"{path}: cannot decode the image ({_reason(err)})") from err
    return found, expected, header


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _tiff_page(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the first page of a TIFF that Pillow cannot read, if supported."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            shape, dtype = tuple(page.shape), np.dtype(page.dtype)
    except Exception as err:  # tifffile raises many kinds on a damaged file
        raise ImageFileError(f"{path}: cannot decode the TIFF ({_reason(err)})") from err
    channels = shape[2] if len(shape) == 3 else 1
    if dtype.kind != "f" or len(shape) not in (2, 3) or channels not in (1, 2, 3, 4):
        raise ImageFileError(
            f"{path}: a TIFF of {dtype} samples, shape {shape}, is not supported (TIFFs may "
            "hold 8- or 16-bit unsigned or floating-point gray, gray + alpha, RGB or RGBA)"
        )
    return shape, dtype


def _load_tiff(path: Path) -> tuple[np.ndarray, ImageInfo]:
    """A floating-point TIFF that Pillow cannot read (colour, float64), as float32."""
    shape, _ = _tiff_page(path)
    try:
        array = tifffile.imread(path, key=0)
    except Exception as err:
        raise ImageFileError(f"{path}: cannot decode the TIFF ({_reason(err)})") from err
    info = ImageInfo(format="TIFF", mode="F", bit_depth=32)
    if array.shape != shape or array.size == 0:
        raise ImageFileError(f"{path}: cannot decode the TIFF (got shape {array.shape})")
    return np.ascontiguousarray(array, dtype=np.float32), info


_TIFF_BITS_PER_SAMPLE = 258
_TIFF_SAMPLES_PER_PIXEL = 277
_TIFF_SAMPLE_FORMAT = 339  # 3: IEEE floating point


def _float_samples(img: Image.Image) -> int:
    """The samples per pixel of a floating-point TIFF (0 for any other kind)."""
    kind = img.tag_v2.get(_TIFF_SAMPLE_FORMAT, 1)
    floating = 3 in (kind if isinstance(kind, tuple) else (kind,))
    return int(img.tag_v2.get(_TIFF_SAMPLES_PER_PIXEL, 1)) if floating else 0


def _wide_channels(img: Image.Image, path: Path) -> int | None:
    """The channel count of a PNG/TIFF of 16-bit colour or gray + alpha (Pillow reads them
    at 8 bits, a 16-bit gray + alpha PNG as RGBA), else None."""
    if img.format == "PNG":
        with open(path, "rb") as file:
            reader = png.Reader(file=file)
            reader.preamble()
        return reader.planes if reader.bitdepth == 16 and reader.planes > 1 else None
    if img.format == "TIFF":
        bits = img.tag_v2.get(_TIFF_BITS_PER_SAMPLE, (8,))
        samples = img.tag_v2.get(_TIFF_SAMPLES_PER_PIXEL, 1)
        wide = 16 in (bits if isinstance(bits, tuple) else (bits,)) and samples > 1
        return samples if wide else None
    return None


def _decode_16bit_colour(img: Image.Image, path: Path) -> np.ndarray | None:
    """16-bit colour or gray + alpha at full depth (pypng, tifffile), else None."""
    if _wide_channels(img, path) is None:
        return None
    if img.format == "PNG":
        with open(path, "rb") as file:
            width, height, rows, info = png.Reader(file=file).asDirect()
            planes = info["planes"]
            return np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(
                height, width, planes
            )
    array = tifffile.imread(path, key=0)
    return array if array.dtype == np.uint16 and array.ndim == 3 else None


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

    16-bit and floating-point colour have no Pillow mode; :func:`save_image` writes them
    with pypng or tifffile.
    """
    array = _check_array(array)
    if array.dtype in (np.uint16, np.float32):
        if array.ndim == 3 and array.shape[2] > 1:
            raise ValueError(f"Pillow has no mode for {array.dtype} colour images; use save_image")
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
    channels = 1 if array.ndim == 2 else array.shape[2]
    fmt = check_savable(path, array.dtype, channels)
    if fmt == "WEBP" and channels == 2:
        array = np.concatenate([np.repeat(array[..., :1], 3, axis=2), array[..., 1:]], axis=2)
    if path.exists() and not overwrite:
        raise _exists_error(path) from None
    folder = path.parent
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise ImageFileError(f"{path}: cannot write, the folder {folder} {reason}")

    try:
        # (a short prefix: the temporary name must fit wherever the final name fits)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem[:24]}.", suffix=".tmp", dir=folder)
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


def check_savable(path: str | os.PathLike, dtype: np.dtype, channels: int) -> str:
    """The format of ``path``'s extension if it can hold an image of ``dtype`` (uint8,
    uint16, float32) and ``channels`` (2 and 4 carry alpha); :class:`ImageFileError` naming
    the problem otherwise. Checks nothing on disk."""
    path = Path(path)
    dtype = np.dtype(dtype)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageFileError(
            f"{path}: unknown image extension {path.suffix!r} for writing; "
            f"use one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    if dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        raise ImageFileError(f"{path}: {fmt} cannot store 16-bit images; save as .png or .tif")
    if dtype == np.uint16 and fmt == "TIFF" and channels == 2:
        raise ImageFileError(f"{path}: 16-bit gray + alpha is not supported in TIFF; use .png")
    if dtype == np.float32 and fmt != "TIFF":
        raise ImageFileError(f"{path}: floating-point images can only be saved as .tif")
    if channels in (2, 4) and fmt not in _ALPHA_FORMATS:
        raise ImageFileError(
            f"{path}: {fmt} cannot store an alpha channel; save as .png, .tif or .webp"
        )
    return fmt


def peek_image(path: str | os.PathLike, max_pixels: int | None = None) -> tuple[np.dtype, int]:
    """The dtype and channel count :func:`load_image` will return for ``path``, read from
    the file's header (a PNG's image data is inflated and counted, not kept: see
    :func:`load_image`'s refusals); :class:`ImageFileError` for a file it would refuse."""
    path = Path(path)
    img = _open(path, MAX_PIXELS if max_pixels is None else max_pixels)
    if img is None:
        shape, _ = _tiff_page(path)
        return np.dtype(np.float32), shape[2] if len(shape) == 3 else 1
    try:
        with img:
            mode, transparent = img.mode, "transparency" in img.info
            wide = _wide_channels(img, path)
    except (OSError, SyntaxError, ValueError, struct.error) as err:
        raise ImageFileError(f"{path}: cannot decode the image ({_reason(err)})") from err
    if wide is not None:
        return np.dtype(np.uint16), wide
    if mode == "F":
        return np.dtype(np.float32), 1
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        channels = 1
    elif mode == "P":
        channels = 4 if transparent else 3
    else:
        channels = {"LA": 2, "La": 2, "PA": 4, "RGBA": 4, "RGBa": 4}.get(mode, 3)
    return np.dtype(np.uint16 if mode.startswith("I") else np.uint8), channels


def missing_folder(folder: str | os.PathLike) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist (None: it exists):
    what creating ``folder`` adds, and what a failed run removes again."""
    folder, missing = Path(folder), None
    while not folder.exists():
        missing = folder
        if folder.parent == folder:
            break
        folder = folder.parent
    return missing


def remove_empty_folders(root: str | os.PathLike) -> None:
    """Remove ``root`` and every folder under it that holds no file, deepest first."""
    if not Path(root).is_dir():
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):  # not empty: a file is kept
            os.rmdir(folder)


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
    if array.dtype in (np.uint16, np.float32) and array.ndim == 3:  # no Pillow mode for these
        if fmt == "PNG":
            fh.write(_encode_png16(array, icc_profile))
        else:
            colour = array.shape[2] >= 3
            extra = ["unassalpha"] if array.shape[2] in (2, 4) else []
            buffer = io.BytesIO()  # tifffile wants a named file or a buffer, not a descriptor
            tifffile.imwrite(
                buffer, array, photometric="rgb" if colour else "minisblack", extrasamples=extra
            )
            fh.write(buffer.getvalue())
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


def _encode_png16(array: np.ndarray, icc_profile: bytes | None) -> bytes:
    """A 16-bit PNG (gray + alpha, RGB or RGBA) with pypng, the ICC profile as iCCP."""
    h, w, planes = array.shape
    writer = png.Writer(w, h, greyscale=planes == 2, alpha=planes in (2, 4), bitdepth=16)
    buffer = io.BytesIO()
    writer.write(buffer, array.reshape(h, w * planes))
    if not icc_profile:
        return buffer.getvalue()
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    iccp = (b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile))
    out = io.BytesIO()
    png.write_chunks(out, [chunks[0], iccp, *chunks[1:]])  # iCCP goes right after IHDR
    return out.getvalue()
