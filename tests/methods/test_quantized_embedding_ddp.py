"""Malali's evaluation under DDP: after a DDP fit every rank runs the row's evaluation, so each
rank must embed only its share of the test images and captions, and every rank must end with
the same complete embeddings as a single process (each item embedded once in the whole job)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from tests.distributed import run_gloo
from tests.methods.test_quantized_embedding import _model

N_IMAGES, CAPTIONS = 7, [f"caption {i} words" for i in range(11)]


class _Images(Dataset):
    """An ``images`` view stand-in: fixed random 32-px images."""

    def __len__(self) -> int:
        return N_IMAGES

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return {"image": torch.randn(3, 32, 32, generator=g), "index": i}


class _Tokenizer:
    def encode(self, text: str, max_len: int) -> list[int]:
        ids = [5 + (sum(map(ord, w)) % 25) for w in text.split()][:max_len]
        return ids + [0] * (max_len - len(ids))


def _embed(model, counts: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    images, tokens = model.embed_images, model.embed_tokens

    def count_images(x):
        counts["images"] += x.shape[0]
        return images(x)

    def count_tokens(t):
        counts["captions"] += t.shape[0]
        return tokens(t)

    model.embed_images, model.embed_tokens = count_images, count_tokens
    return model.embed_image_dataset(_Images()), model.embed_captions(CAPTIONS, _Tokenizer())


def _worker(rank: int, world: int) -> tuple:
    counts = {"images": 0, "captions": 0}
    img, txt = _embed(_model(finetune=False), counts)
    return counts, img.tolist(), txt.tolist()


@pytest.mark.slow  # spawning processes that import torch and timm takes 20-60 s on 2 cores
def test_ddp_ranks_share_the_test_embeddings_and_agree_with_one_process():
    results = run_gloo(_worker, world=2)
    single = {"images": 0, "captions": 0}
    img, txt = _embed(_model(finetune=False), single)
    assert single == {"images": N_IMAGES, "captions": len(CAPTIONS)}
    # each item embedded once in the whole job, not once per rank
    assert sum(r[0]["images"] for r in results) == N_IMAGES
    assert sum(r[0]["captions"] for r in results) == len(CAPTIONS)
    for _, rank_img, rank_txt in results:
        torch.testing.assert_close(torch.tensor(rank_img), img, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(torch.tensor(rank_txt), txt, atol=1e-5, rtol=1e-4)
