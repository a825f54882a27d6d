"""The numbers published in the paper (arXiv 2508.09824), as data.

``PAPER_RESULTS[(model, dataset, setting)]`` is the PSNR in dB that the paper reports:
``setting`` is ``"sigma25"`` for denoising, ``"x4"`` for super-resolution (Y channel) and
``"kernel1"`` … ``"kernel5"`` for deblurring (RGB).
"""

from __future__ import annotations

__all__ = ["PAPER_RESULTS", "paper_psnr"]

_DENOISE = {  # Set12, BSD68 at sigma 25
    "dncnn": (30.43, 29.23),
    "conv_dncnn": (30.64, 29.30),
    "convt_dncnn": (30.61, 29.29),
    "converse_dncnn": (30.70, 29.36),
}
_SR = {  # Set5, Set14, BSD100, Urban100, x4, Y channel
    "msrresnet": (32.21, 28.60, 27.59, 26.09),
    "conv_srresnet": (32.23, 28.73, 27.62, 26.24),
    "convt_srresnet": (32.09, 28.61, 27.56, 25.89),
    "converse_srresnet": (32.25, 28.72, 27.62, 26.24),
}
_DEBLUR = {  # BSD100 kernels 1..5, Urban100 kernels 1..5
    "convnet": ((25.26, 22.96, 27.16, 26.91, 23.98), (22.27, 20.59, 23.43, 23.92, 21.12)),
    "conversenet": ((27.69, 24.43, 31.28, 27.64, 27.31), (24.24, 21.52, 23.16, 24.56, 22.56)),
    "conv_usrnet": ((32.18, 31.03, 37.80, 31.82, 34.33), (31.48, 30.19, 36.80, 31.23, 33.63)),
    "converse_usrnet": ((32.46, 31.20, 38.40, 32.21, 34.62), (31.96, 30.59, 37.48, 31.95, 33.99)),
}

PAPER_RESULTS: dict[tuple[str, str, str], float] = {}
for _model, _values in _DENOISE.items():
    for _dataset, _v in zip(("Set12", "BSD68"), _values, strict=True):
        PAPER_RESULTS[(_model, _dataset, "sigma25")] = _v
for _model, _values in _SR.items():
    for _dataset, _v in zip(("Set5", "Set14", "BSD100", "Urban100"), _values, strict=True):
        PAPER_RESULTS[(_model, _dataset, "x4")] = _v
for _model, _sets in _DEBLUR.items():
    for _dataset, _values in zip(("BSD100", "Urban100"), _sets, strict=True):
        for _k, _v in enumerate(_values, start=1):
            PAPER_RESULTS[(_model, _dataset, f"kernel{_k}")] = _v


def paper_psnr(model: str, dataset: str, setting: str) -> float | None:
    """The paper's PSNR for this row, or None when the paper has no such entry."""
    return PAPER_RESULTS.get((model, dataset, setting))
