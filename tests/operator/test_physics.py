"""ConvDownsample, the deepinv-style physics: A and A_adjoint are the forward model and its
adjoint, and prox_l2 is the proximal operator of ½‖Ax − y‖², checked by its optimality
condition in float64."""

from __future__ import annotations

import itertools

import pytest
import torch

from conversenet.operator import ConvDownsample, forward_model, reverse_conv

from conftest import normalized_kernels

pytestmark = pytest.mark.usefixtures("seeded")

GRIDS = {1: (8,), 2: (5, 6), 3: (3, 4, 3)}
CASES = [
    pytest.param(d, s, k, b, id=f"{d}d-s{s}-k{k}-{'N' if b == 2 else '1'}")
    for d, s, k, b in itertools.product((1, 2, 3), (1, 2, 3), (2, 3), (1, 2))
]


def setup(ndim, scale, kernel_size, kernel_batch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kernel = normalized_kernels(gen, kernel_batch, 3, (kernel_size,) * ndim)
    kernel = kernel + 0.3 * torch.randn(kernel.shape, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 3, *(scale * n for n in GRIDS[ndim]), generator=gen, dtype=torch.float64)
    y = torch.randn(2, 3, *GRIDS[ndim], generator=gen, dtype=torch.float64)
    return ConvDownsample(kernel, scale), x, y


@pytest.mark.parametrize(("ndim", "scale", "kernel_size", "kernel_batch"), CASES)
def test_a_and_its_adjoint(ndim, scale, kernel_size, kernel_batch):
    physics, x, y = setup(ndim, scale, kernel_size, kernel_batch)
    torch.testing.assert_close(
        physics.A(x), forward_model.conv_downsample(x, physics.kernel, scale)
    )
    torch.testing.assert_close(physics(x), physics.A(x))
    torch.testing.assert_close(
        physics.A_adjoint(y), forward_model.conv_downsample_adjoint(y, physics.kernel, scale)
    )
    # ⟨Ax, y⟩ = ⟨x, Aᵀy⟩: float64 sums of a few hundred products of unit-size numbers;
    # measured at most 1.4e-14 over these cases, so 1e-12 leaves a margin of 70x
    lhs, rhs = (physics.A(x) * y).sum(), (x * physics.A_adjoint(y)).sum()
    assert abs(lhs - rhs).item() <= 1e-12 * max(1.0, abs(lhs).item())


@pytest.mark.parametrize(("ndim", "scale", "kernel_size", "kernel_batch"), CASES)
@pytest.mark.parametrize("gamma", [0.05, 1.0, 20.0])
def test_prox_satisfies_its_optimality_condition(ndim, scale, kernel_size, kernel_batch, gamma):
    """x = prox_γ(z) minimises ½‖Ax − y‖² + ‖x − z‖²/(2γ): Aᵀ(Ax − y) + (x − z)/γ = 0."""
    physics, z, y = setup(ndim, scale, kernel_size, kernel_batch, seed=1)
    x = physics.prox_l2(z, y, gamma)
    assert x.shape == z.shape
    gradient = physics.A_adjoint(physics.A(x) - y) + (x - z) / gamma
    # the closed form in float64: the residual is rounding of terms of size ~|z|/γ and
    # |K|²·|x|; measured at most 4.0e-15 relative to max(1, 1/γ)·max|z| over these cases,
    # so 1e-11 leaves a margin of 2500x while an error in the formula shows at ~1e-2
    scale_of_terms = max(1.0, 1 / gamma) * z.abs().max().item()
    assert gradient.abs().max().item() <= 1e-11 * scale_of_terms
    # and it is the reverse convolution with λ = 1/γ and X0 = z
    expected = reverse_conv(y, physics.kernel, 1 / gamma, scale, 0, "circular", z)
    torch.testing.assert_close(x, expected, rtol=0, atol=0)


def test_prox_moves_from_z_towards_the_data_as_gamma_grows():
    physics, z, y = setup(2, 2, 3, 1, seed=2)
    misfits = [(physics.A(physics.prox_l2(z, y, g)) - y).norm().item() for g in (1e-3, 1, 1e3)]
    assert misfits == sorted(misfits, reverse=True)
    # γ -> 0 returns z itself: x − z = −γ Aᵀ(Ax − y) = O(γ)
    torch.testing.assert_close(physics.prox_l2(z, y, 1e-9), z, rtol=0, atol=1e-7)


def test_per_channel_gamma_tensor():
    physics, z, y = setup(2, 2, 3, 1, seed=3)
    gamma = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64).view(1, 3, 1, 1)
    x = physics.prox_l2(z, y, gamma)
    for c, g in enumerate((0.1, 1.0, 10.0)):
        torch.testing.assert_close(x[:, c], physics.prox_l2(z, y, g)[:, c], rtol=0, atol=1e-14)


def test_kernel_is_a_buffer_and_moves_with_the_module():
    physics = ConvDownsample(torch.full((1, 2, 3, 3), 1 / 9), scale=2)
    assert dict(physics.named_buffers()).keys() == {"kernel"}
    assert not list(physics.parameters())
    assert physics.double().kernel.dtype == torch.float64
    assert "scale=2" in repr(physics)


@pytest.mark.parametrize(
    ("kernel", "scale", "error", "message"),
    [
        ([[1.0]], 1, TypeError, r"kernel must be a torch\.Tensor, got list"),
        (torch.ones(3, 3), 1, ValueError, r"kernel must have shape \(1 or N, C, \*k\)"),
        (torch.ones(1, 1, 3, 3), 0, ValueError, r"scale must be an integer >= 1, got 0"),
    ],
)
def test_constructor_rejects(kernel, scale, error, message):
    with pytest.raises(error, match=message):
        ConvDownsample(kernel, scale)


@pytest.mark.parametrize(
    ("gamma", "error", "message"),
    [
        (0.0, ValueError, r"gamma must be > 0, got 0\.0"),
        (-1, ValueError, r"gamma must be > 0, got -1"),
        ("1", TypeError, r"gamma must be a real number, got str"),
    ],
)
def test_prox_rejects_bad_gamma(gamma, error, message):
    physics, z, y = setup(2, 1, 3, 1)
    with pytest.raises(error, match=message):
        physics.prox_l2(z, y, gamma)
