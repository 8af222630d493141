"""faiss is optional (capbench[gpu] brings faiss-gpu; the CPU default backend is torch): without
it retrieval still runs, asking for the faiss backend says what to install, and a faiss-gpu
whose files faiss-cpu overwrote is reported instead of silently searching on the CPU."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch

from capbench.eval import retrieval


def _data():
    g = torch.Generator().manual_seed(0)
    return retrieval.l2_normalize(torch.randn(6, 4, generator=g)), retrieval.l2_normalize(
        torch.randn(20, 4, generator=g)
    )


def test_no_faiss_means_the_torch_backend(monkeypatch):
    q, db = _data()
    expected = retrieval.search_topk(q, db, 5, backend="torch")
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    assert retrieval._faiss_gpus() == 0
    scores, idx = retrieval.search_topk(q, db, 5)  # auto
    assert torch.equal(idx, expected[1]) and torch.equal(scores, expected[0])
    with pytest.raises(
        ImportError, match=r"faiss retrieval backend needs faiss: pip install 'capbench\[gpu\]'"
    ):
        retrieval.search_topk(q, db, 5, backend="faiss")


def test_cpu_build_over_faiss_gpu_is_reported(monkeypatch):
    cpu_build = types.ModuleType("faiss")
    cpu_build.get_num_gpus = lambda: 0  # and no StandardGpuResources: the CPU build
    monkeypatch.setitem(sys.modules, "faiss", cpu_build)
    monkeypatch.setattr(retrieval, "_installed", lambda name: name == "faiss-gpu")
    with pytest.warns(RuntimeWarning, match="force-reinstall --no-deps faiss-gpu"):
        assert retrieval._faiss_gpus() == 0
    monkeypatch.setattr(retrieval, "_installed", lambda name: False)  # plain faiss-cpu: fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert retrieval._faiss_gpus() == 0
