"""The FFT engine: ducc0, pocketfft and torch.fft compute the same transforms (1-3 axes,
odd and even sizes, batched, float32/float64, with and without ``out=``, channels-last);
the engine is chosen by device, dtype, autograd, export mode and whether ducc0 is installed;
the scratch workspace never lends a buffer twice and stays bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import torch

from conversenet.operator import converse2d, fft, spectral

from conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("seeded")

# ducc0 is a dependency where it has wheels; elsewhere its own tests skip, the rest run
needs_ducc0 = pytest.mark.skipif(fft._ducc0 is None, reason="ducc0 is not installed")
ENGINES = [pytest.param(fft.DUCC0, marks=needs_ducc0), fft.POCKETFFT, fft.TORCH]
SIZES = [(268, 268), (7, 9), (6, 5), (11,), (12,), (4, 6, 5)]
# float64 transforms of unit-variance inputs differ by rounding only: spectra (values up to
# ~√n) by at most 5.7e-13 at 268² and 7e-15 on the small sizes, round trips by 2.4e-15
# (measured with seed 0). The bounds, 1e-12 for round trips and 1e-12·√n for spectra, keep
# a margin of 400x or more and still catch any wrong transform (errors of order 1).
ATOL = 1e-12
# float32: spectra off the float64 result by at most 2.9e-5 at 268² (values up to ~√n =
# 268) and round trips by 4.8e-7 (seed 0); 1e-6·√n and 5e-6 keep a margin of 10x.
ATOL32 = 1e-6
ROUND_TRIP32 = 5e-6


def _dims(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def _name(sizes) -> str:
    return "x".join(map(str, sizes))


@pytest.mark.parametrize("engine", ENGINES, ids=["ducc0", "pocketfft", "torch"])
@pytest.mark.parametrize("sizes", SIZES, ids=_name)
def test_engines_compute_torch_fft_transforms(engine, sizes):
    x = torch.randn(2, 3, *sizes, dtype=torch.float64)
    ndim, dims = len(sizes), _dims(len(sizes))
    atol = ATOL * x.numel() ** 0.5
    with torch.no_grad():
        spectrum = engine.rfftn(x, ndim)
        torch.testing.assert_close(spectrum, torch.fft.rfftn(x, dim=dims), rtol=0, atol=atol)
        full = engine.fftn(x, ndim)
        torch.testing.assert_close(full, torch.fft.fftn(x, dim=dims), rtol=0, atol=atol)
        back = engine.irfftn(spectrum.clone(), sizes)  # the clone may be overwritten
        torch.testing.assert_close(back, x, rtol=0, atol=ATOL)


@needs_ducc0
@pytest.mark.parametrize("sizes", SIZES, ids=_name)
def test_ducc0_in_float32_is_torch_fft_to_rounding(sizes):
    x = torch.randn(2, 3, *sizes, dtype=torch.float64)
    ndim, dims = len(sizes), _dims(len(sizes))
    with torch.no_grad():
        spectrum = fft.DUCC0.rfftn(x.float(), ndim)
        assert spectrum.dtype == torch.complex64
        reference = torch.fft.rfftn(x, dim=dims)
        torch.testing.assert_close(
            spectrum.to(torch.complex128), reference, rtol=0, atol=ATOL32 * x.numel() ** 0.5
        )
        back = fft.DUCC0.irfftn(spectrum, sizes)
        assert back.dtype == torch.float32
        torch.testing.assert_close(back.double(), x, rtol=0, atol=ROUND_TRIP32)


@needs_ducc0
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_ducc0_complex_input(dtype):
    z = torch.randn(2, 3, 9, 6, dtype=dtype)
    with torch.no_grad():
        result = fft.DUCC0.fftn(z, 2)
    assert result.dtype == dtype
    reference = torch.fft.fft2(z.to(torch.complex128))
    atol = (ATOL if dtype == torch.complex128 else ATOL32) * z.numel() ** 0.5
    torch.testing.assert_close(result.to(torch.complex128), reference, rtol=0, atol=atol)
    conj = fft.DUCC0.fftn(z.conj(), 2)  # a conjugate view is resolved, not misread
    torch.testing.assert_close(conj, torch.fft.fft2(z.conj()), rtol=0, atol=atol)


@pytest.mark.parametrize("engine", ENGINES, ids=["ducc0", "pocketfft", "torch"])
def test_out_receives_the_result(engine):
    x = torch.randn(1, 2, 6, 8, dtype=torch.float64)
    out = torch.empty(1, 2, 6, 5, dtype=torch.complex128)
    with torch.no_grad():
        result = engine.rfftn(x, 2, out=out)
        assert result.data_ptr() == out.data_ptr()
        torch.testing.assert_close(out, torch.fft.rfft2(x), rtol=0, atol=ATOL)
        back = torch.empty_like(x)
        assert engine.irfftn(out.clone(), (6, 8), out=back).data_ptr() == back.data_ptr()
    torch.testing.assert_close(back, x, rtol=0, atol=ATOL)


@needs_ducc0
def test_ducc0_keeps_the_channels_last_layout():
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        spectrum = fft.DUCC0.rfftn(x, 2)
        back = fft.DUCC0.irfftn(spectrum.clone(memory_format=torch.preserve_format), (9, 8))
    for t in (spectrum, back):
        assert t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    torch.testing.assert_close(spectrum, torch.fft.rfft2(x), rtol=0, atol=ATOL * 30)
    torch.testing.assert_close(back, x, rtol=0, atol=ATOL)


@needs_ducc0
def test_ducc0_irfftn_of_another_size_is_torch_fft():
    # torch.fft.irfftn crops or zero-pads a spectrum that does not fit the output sizes
    x_hat = torch.randn(2, 7, 5, dtype=torch.complex128)
    with torch.no_grad():
        for sizes in [(6, 8), (9, 12), (7, 11)]:
            expected = torch.fft.irfftn(x_hat, s=sizes)
            torch.testing.assert_close(
                fft.DUCC0.irfftn(x_hat.clone(), sizes), expected, rtol=0, atol=ATOL
            )


@needs_ducc0
def test_ducc0_uses_pytorch_thread_count(monkeypatch):
    seen = []
    for name in ("r2c", "c2r", "c2c"):
        original = getattr(fft._ducc0, name)

        def recording(*args, original=original, **kwargs):
            seen.append(kwargs["nthreads"])
            return original(*args, **kwargs)

        monkeypatch.setattr(fft._ducc0, name, recording)
    x = torch.randn(1, 2, 6, 8)
    previous = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            with torch.no_grad():
                fft.DUCC0.irfftn(fft.DUCC0.rfftn(x, 2), (6, 8))
                fft.DUCC0.fftn(x, 2)
            assert seen == [threads] * 3
            seen.clear()
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------
# the choice
# --------------------------------------------------------------------------------------
@needs_ducc0
def test_engine_for_cpu_tensors_is_ducc0_outside_autograd():
    x = torch.randn(1, 2, 6, 8, requires_grad=True)
    assert fft.engine_for(x) is fft.TORCH
    assert fft.engine_for(x.detach()) is fft.DUCC0
    assert fft.engine_for(x.detach(), x) is fft.TORCH  # one tracked tensor is enough
    with torch.no_grad():
        assert fft.engine_for(x) is fft.DUCC0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_other_dtypes_keep_torch_fft(dtype):
    assert fft.engine_for(torch.zeros(1, 1, 4, 4, dtype=dtype)) is fft.TORCH


def test_without_ducc0_pocketfft_and_torch_stand_in(monkeypatch):
    monkeypatch.setattr(fft, "_ducc0", None)
    x = torch.randn(1, 2, 6, 8, dtype=torch.float64, requires_grad=True)
    assert fft.engine_for(x) is fft.TORCH
    with torch.no_grad():
        assert fft.engine_for(x) is fft.POCKETFFT
    weight = torch.softmax(torch.randn(1, 2, 9, dtype=torch.float64), -1).view(1, 2, 3, 3)
    bias = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    out = converse2d(x, weight, bias, padding=2)
    monkeypatch.undo()
    torch.testing.assert_close(out, converse2d(x, weight, bias, padding=2), rtol=0, atol=ATOL)


def test_a_python_without_ducc0_runs_the_operator():
    script = (
        "import sys; sys.modules['ducc0'] = None\n"  # makes `import ducc0` fail
        "import torch\n"
        "from conversenet.operator import converse2d, fft\n"
        "x = torch.rand(1, 2, 8, 8)\n"
        "with torch.no_grad():\n"
        "    assert fft.engine_for(x) is fft.POCKETFFT, fft.engine_for(x)\n"
        "y = converse2d(x.requires_grad_(), torch.full((1, 2, 3, 3), 1 / 9), "
        "torch.zeros(1, 2, 1, 1))\n"
        "y.sum().backward()\n"
        "print('ok', fft.engine_for(x).name)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_keep_torch_fft():
    x = torch.randn(1, 2, 6, 8, device="cuda")
    with torch.no_grad():
        assert fft.engine_for(x) is fft.TORCH
    assert fft.engine_for(x.requires_grad_()) is fft.TORCH


def test_export_friendly_mode_keeps_the_libraries_out():
    x = torch.randn(1, 2, 6, 8)
    with torch.no_grad(), fft.export_friendly():
        assert fft.is_export_friendly() and fft.engine_for(x) is fft.TORCH
    assert not fft.is_export_friendly()


def test_export_friendly_restores_the_previous_state_on_error():
    with pytest.raises(RuntimeError), fft.export_friendly():
        raise RuntimeError("boom")
    assert not fft.is_export_friendly()


# --------------------------------------------------------------------------------------
# the scratch workspace
# --------------------------------------------------------------------------------------
def test_workspace_never_lends_a_buffer_twice():
    space = fft.Workspace(max_bytes=2**20)
    like = torch.empty(1)
    with space.borrow((4, 5), torch.float32, like) as first:
        with space.borrow((4, 5), torch.float32, like) as second:
            assert first.data_ptr() != second.data_ptr()
        with space.borrow((4, 5), torch.float32, like) as third:  # second is back: reused
            assert third.data_ptr() == second.data_ptr() != first.data_ptr()
    with space.borrow((4, 5), torch.float32, like) as again:  # one of each kind is kept
        assert again.data_ptr() in (first.data_ptr(), second.data_ptr())
    assert space.nbytes == 4 * 5 * 4


def test_workspace_is_bounded_and_keeps_the_latest():
    space = fft.Workspace(max_bytes=1000)
    like = torch.empty(1)
    for n in (100, 120, 140):  # 400, 480, 560 bytes: the oldest go
        with space.borrow((n,), torch.float32, like):
            pass
        assert space.nbytes <= 1000
    assert space.nbytes == 560
    with space.borrow((300,), torch.float32, like):  # larger than the bound: never kept
        pass
    assert space.nbytes == 560
    space.clear()
    assert space.nbytes == 0


def test_workspace_keeps_the_layout_apart():
    space = fft.Workspace()
    plain = torch.empty(1, 3, 4, 5)
    channels_last = plain.contiguous(memory_format=torch.channels_last)
    with space.borrow(plain.shape, torch.float32, plain) as a:
        assert a.is_contiguous()
    with space.borrow(plain.shape, torch.float32, channels_last) as b:
        assert b.is_contiguous(memory_format=torch.channels_last) and not b.is_contiguous()
        assert a.data_ptr() != b.data_ptr()


def test_workspace_buffers_serve_inside_and_outside_inference_mode():
    """A buffer first lent inside ``torch.inference_mode`` is updated in place outside it
    (an inference tensor could not be); the operator runs in both modes in turn."""
    space = fft.Workspace()
    like = torch.empty(1)
    with torch.inference_mode(), space.borrow((4,), torch.float32, like) as buffer:
        buffer.fill_(1.0)
    with torch.no_grad(), space.borrow((4,), torch.float32, like) as again:
        assert again.data_ptr() == buffer.data_ptr()
        again.mul_(2.0)
    x = torch.rand(1, 2, 12, 12)
    weight, bias = torch.full((1, 2, 3, 3), 1 / 9), torch.zeros(1, 2, 1, 1)
    with torch.inference_mode():
        first = converse2d(x, weight, bias)
    with torch.no_grad():
        second = converse2d(x, weight, bias)
    assert torch.equal(first, second)


def test_each_thread_has_its_own_workspace():
    spaces = []
    thread = threading.Thread(target=lambda: spaces.append(fft.workspace()))
    thread.start()
    thread.join()
    assert spaces[0] is not fft.workspace()


@needs_ducc0
def test_operator_results_are_not_scratch_buffers():
    """Results still in use survive later calls of the same shape (a buffer handed out
    twice, or a scratch buffer returned as a result, would be overwritten)."""
    weight = torch.softmax(torch.randn(1, 4, 25), -1).view(1, 4, 5, 5)
    bias = torch.zeros(1, 4, 1, 1)
    inputs = [torch.rand(2, 4, 20, 20) for _ in range(3)]
    with torch.no_grad():
        first = [converse2d(x, weight, bias, padding=4) for x in inputs]
        kept = [t.clone() for t in first]
        for x in reversed(inputs):
            converse2d(x, weight, bias, padding=4)
    for result, copy in zip(first, kept, strict=True):
        assert torch.equal(result, copy)
    assert 0 < fft.workspace().nbytes <= fft.WORKSPACE_BYTES  # the spectrum's buffer is kept


@needs_ducc0
def test_only_ducc0_gets_scratch_buffers(monkeypatch):
    """torch.fft (other devices, compiled graphs) and pocketfft get no CPU scratch buffer;
    ducc0 does, outside autograd only (autograd would keep the spectrum for the backward)."""
    borrowed = []
    original = spectral.scratch

    def counting(*args, **kwargs):
        borrowed.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(spectral, "scratch", counting)
    x = torch.rand(1, 2, 8, 8)
    weight, bias = torch.full((1, 2, 3, 3), 1 / 9), torch.zeros(1, 2, 1, 1)
    with torch.no_grad():
        converse2d(x, weight, bias)
        assert len(borrowed) == 1
        monkeypatch.setattr(fft, "_ducc0", None)  # pocketfft
        converse2d(x, weight, bias)
        monkeypatch.setattr(fft, "_library_applies", lambda *tensors: False)  # torch.fft
        converse2d(x, weight, bias)
    monkeypatch.undo()
    monkeypatch.setattr(spectral, "scratch", counting)
    converse2d(x, weight.requires_grad_(), bias)
    assert len(borrowed) == 1


@needs_ducc0
def test_operator_engines_agree(monkeypatch):
    x = torch.rand(2, 3, 21, 18, dtype=torch.float64)
    weight = torch.softmax(torch.randn(1, 3, 49, dtype=torch.float64), -1).view(1, 3, 7, 7)
    bias = torch.randn(1, 3, 1, 1, dtype=torch.float64)
    results = {}
    with torch.no_grad():
        results["ducc0"] = converse2d(x, weight, bias, padding=6)
        monkeypatch.setattr(fft, "_ducc0", None)
        assert fft.engine_for(x) is fft.POCKETFFT
        results["pocketfft"] = converse2d(x, weight, bias, padding=6)
        monkeypatch.setattr(fft, "_library_applies", lambda *tensors: False)
        assert fft.engine_for(x) is fft.TORCH
        results["torch"] = converse2d(x, weight, bias, padding=6)
    for name in ("ducc0", "pocketfft"):
        torch.testing.assert_close(results[name], results["torch"], rtol=0, atol=1e-11)
