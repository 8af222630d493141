"""Gordo & Larlus losses against hand-computed values."""

from __future__ import annotations

import numpy as np
import torch

from capbench.losses import gordo_text_losses, gordo_visual_loss, triplet_margin_dot, wsabie_loss


def test_triplet_margin_dot_hand_values():
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    p = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    n = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    # row 0: q.p = 0.8, q.n = 0.6 -> 0.5 * max(0, 0.5 - 0.8 + 0.6) = 0.5 * 0.3 = 0.15
    # row 1: q.p = 1.0, q.n = 0.6 -> 0.5 * max(0, 0.5 - 1.0 + 0.6) = 0.5 * 0.1 = 0.05
    per_row = triplet_margin_dot(q, p, n, margin=0.5, reduction="none")
    torch.testing.assert_close(per_row, torch.tensor([0.15, 0.05]))
    torch.testing.assert_close(triplet_margin_dot(q, p, n, margin=0.5), torch.tensor(0.10))  # mean
    # margin 0.1: row 0 -> 0.5 * max(0, 0.1 - 0.2) = 0; row 1 -> 0.5 * max(0, 0.1 - 0.4) = 0
    torch.testing.assert_close(triplet_margin_dot(q, p, n, margin=0.1), torch.tensor(0.0))


def test_gradient_flows_only_through_active_triplets():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    p = torch.tensor([[0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    n = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    # row 0: q.p = 0, q.n = 1 -> loss 0.5 * (0.1 + 1) = 0.55 (active); row 1: q.p=1, q.n=0 -> 0
    loss = triplet_margin_dot(q, p, n, margin=0.1)
    torch.testing.assert_close(loss, torch.tensor(0.275))
    loss.backward()
    # d/dq0 of 0.5 * mean(.) = 0.25 * (n0 - p0) = 0.25 * (1, -1); row 1 inactive -> 0
    torch.testing.assert_close(q.grad, torch.tensor([[0.25, -0.25], [0.0, 0.0]]))
    torch.testing.assert_close(p.grad, torch.tensor([[-0.25, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(n.grad, torch.tensor([[0.25, 0.0], [0.0, 0.0]]))


def test_gordo_losses_use_the_right_streams():
    e = torch.eye(3)
    phi_q, phi_p, phi_n = e[[0]], e[[0]], e[[1]]  # visual: q.p = 1, q.n = 0 -> L_v = 0
    theta_q, theta_p, theta_n = e[[2]], e[[1]], e[[0]]
    assert float(gordo_visual_loss(phi_q, phi_p, phi_n, 0.1)) == 0.0
    l_t1, l_t2 = gordo_text_losses(phi_q, phi_p, phi_n, theta_q, theta_p, theta_n, 0.1)
    # L_t1: phi_q.theta_p = 0, phi_q.theta_n = 1 -> 0.5 * (0.1 - 0 + 1) = 0.55
    torch.testing.assert_close(l_t1, torch.tensor(0.55))
    # L_t2: theta_q.phi_p = 0, theta_q.phi_n = 0 -> 0.5 * 0.1 = 0.05
    torch.testing.assert_close(l_t2, torch.tensor(0.05))
    # WSABIE is Eq. 2 alone
    torch.testing.assert_close(wsabie_loss(phi_q, theta_p, theta_n, 0.1), l_t1)


def test_text_projection_sparse_dense_and_formula():
    import scipy.sparse as sp

    from capbench.models.text_projection import TextProjection

    torch.manual_seed(0)
    proj = TextProjection(vocab_size=6, dim=3)
    t = torch.tensor([[0.6, 0.0, 0.8, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    w = proj.proj.weight.detach()  # (D, V): theta = W^T t / ||W^T t|| in the paper's notation
    expected = (t @ w.T) / (t @ w.T).norm(dim=1, keepdim=True)
    torch.testing.assert_close(proj(t), expected)
    torch.testing.assert_close(proj(t.to_sparse()), expected)
    torch.testing.assert_close(proj(sp.csr_matrix(t.numpy())), expected)
    proj(sp.csr_matrix(t.numpy())).sum().backward()  # gradients reach W through the sparse path
    assert (
        proj.proj.weight.grad is not None and proj.proj.weight.grad[:, [1, 3, 5]].abs().sum() == 0
    )


def test_text_projection_stays_fp32_under_bf16_autocast():
    """The paper profile trains under bf16 autocast: theta is computed in fp32 there (autocast's
    bf16 sparse product had a backward that failed on the fp32 W), and its gradient is the
    fp32 one."""
    import scipy.sparse as sp

    from capbench.models.text_projection import TextProjection

    torch.manual_seed(0)
    proj = TextProjection(vocab_size=6, dim=3)
    t = sp.csr_matrix(np.array([[0.6, 0, 0.8, 0, 0, 0], [0, 0, 0, 0, 1.0, 0]], np.float32))
    target = torch.randn(2, 3)
    (proj(t) * target).sum().backward()
    want = proj.proj.weight.grad.clone()
    proj.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        theta = proj(t)
        loss = (theta * target.bfloat16()).sum()
    assert theta.dtype == torch.float32
    loss.backward()
    torch.testing.assert_close(proj.proj.weight.grad, want, rtol=1e-2, atol=1e-2)
