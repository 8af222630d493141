"""The differentiable product quantizer: codes, reconstructions, straight-through gradients."""

from __future__ import annotations

import pytest
import torch

from capbench.models.quantizers import SoftProductQuantizer


def _quantizer(dim=8, m=2, k=4, t=0.5) -> SoftProductQuantizer:
    torch.manual_seed(0)
    return SoftProductQuantizer(dim, m, k, t)


def test_codes_are_the_nearest_codeword_of_each_subspace():
    q = _quantizer()
    x = torch.randn(5, 8)
    codes = q.encode(x)
    assert codes.shape == (5, 2)
    for s in range(2):
        sub = x[:, 4 * s : 4 * s + 4]
        brute = torch.cdist(sub, q.codebooks[s].detach()).argmin(1)
        assert torch.equal(codes[:, s], brute)
    recon = q.decode(codes)
    torch.testing.assert_close(recon[:, 4:], q.codebooks[1][codes[:, 1]].detach())


def test_forward_value_is_the_hard_reconstruction_and_gradients_flow():
    q = _quantizer()
    x = torch.randn(6, 8, requires_grad=True)
    out, codes = q(x)
    torch.testing.assert_close(out, q.decode(codes))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # through the soft assignment
    assert q.codebooks.grad is not None and q.codebooks.grad.abs().sum() > 0


def test_storage_and_bad_sizes():
    q = SoftProductQuantizer(16, 8, 256, 1.0)
    assert q.bits_per_item == 64 and q.bytes_per_item == 8.0
    with pytest.raises(ValueError, match="multiple"):
        SoftProductQuantizer(10, 4, 16, 1.0)
    with pytest.raises(ValueError, match="power of two"):
        SoftProductQuantizer(8, 2, 12, 1.0)
    with pytest.raises(ValueError, match=r"expected \(N, 16\)"):
        q.encode(torch.randn(3, 15))
