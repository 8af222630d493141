"""Linear probes on frozen features: VOC07 per-class linear SVMs and a multinomial logistic probe.

VOC07 protocol (as in the self-supervision benchmarks ICMLM follows): one LinearSVC per class,
C picked from a grid by stratified k-fold cross-validation on trainval (mean AP of the held-out
folds; ties go to the smaller C), refit on all of trainval, scored with :func:`voc07_map` on test.
Difficult images are excluded from training and from evaluation of their class. Every choice
(C grid, chosen C, folds, seed) is returned with the scores, so a result can be re-run exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.svm import LinearSVC

from capbench.eval.metrics import voc07_map

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0)


def _features(x: Any, normalize: bool) -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"features must be [n x d], got shape {arr.shape}")
    if normalize:
        arr = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
    return arr


def _pick_c(
    make: Any, x: np.ndarray, y: np.ndarray, c_grid: Sequence[float], n_folds: int, seed: int,
    scoring: str,
) -> tuple[float, dict[float, float] | None]:  # fmt: skip
    """Best C by stratified CV; with too few samples per class, the middle of the grid."""
    folds = min(n_folds, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2 or len(c_grid) == 1:
        return float(c_grid[len(c_grid) // 2]), None
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = {float(c): float(cross_val_score(make(c), x, y, cv=cv, scoring=scoring).mean())
              for c in c_grid}  # fmt: skip
    best = max(scores.values())
    return min(c for c, s in scores.items() if s == best), scores


def _class_svm(
    x: np.ndarray, y: np.ndarray, test_x: np.ndarray, c_grid: Sequence[float], n_folds: int,
    seed: int, max_iter: int,
) -> tuple[np.ndarray, float, dict[float, float] | None]:  # fmt: skip
    """One class's SVM: C by cross-validation, refit on all of ``x``; its test decision values."""

    def make(cc: float) -> LinearSVC:
        return LinearSVC(C=cc, random_state=seed, max_iter=max_iter)

    best_c, scores = _pick_c(make, x, y, c_grid, n_folds, seed, "average_precision")
    return make(best_c).fit(x, y).decision_function(test_x), best_c, scores


def voc07_svm_probe(
    train_x: Any,
    train_labels: Any,
    test_x: Any,
    test_labels: Any,
    train_difficult: Any = None,
    test_difficult: Any = None,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    n_folds: int = 3,
    seed: int = 0,
    normalize: bool = True,
    max_iter: int = 5000,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """Per-class linear SVMs; returns VOC07 ``map_11pt`` and ``map`` (percent) with the settings.

    ``*_labels``: [n x classes], > 0 = positive; ``*_difficult``: same shape, True = excluded.
    ``n_jobs``: joblib workers over the classes (None: joblib's default, i.e. one unless a
    ``joblib.parallel_config`` context says otherwise; -1: every core).
    """
    xtr, xte = _features(train_x, normalize), _features(test_x, normalize)
    ytr = np.asarray(train_labels) > 0
    dtr = np.zeros_like(ytr) if train_difficult is None else np.asarray(train_difficult, bool)
    if ytr.shape != dtr.shape or ytr.shape[0] != xtr.shape[0]:
        raise ValueError(f"train labels {ytr.shape} / difficult {dtr.shape} vs {xtr.shape[0]} rows")
    for c in range(ytr.shape[1]):
        y = ytr[~dtr[:, c], c]
        if y.min() == y.max():
            raise ValueError(f"class {c} has only {'positives' if y[0] else 'negatives'} in train")
    # the classes are independent problems: one joblib task each (identical results at any n_jobs)
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_class_svm)(xtr[~dtr[:, c]], ytr[~dtr[:, c], c].astype(int), xte, c_grid,
                            n_folds, seed, max_iter)
        for c in range(ytr.shape[1])
    )  # fmt: skip
    test_scores = np.stack([scores for scores, _, _ in fitted], axis=1)
    chosen = [best_c for _, best_c, _ in fitted]
    cv_scores = [cv for _, _, cv in fitted]
    result = voc07_map(test_scores, test_labels, test_difficult)
    result.update({"chosen_c": chosen, "cv_ap": cv_scores, "c_grid": [float(c) for c in c_grid],
                   "n_folds": n_folds, "seed": seed, "normalize": normalize})  # fmt: skip
    return result


def logistic_probe(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    n_folds: int = 3,
    seed: int = 0,
    normalize: bool = True,
    max_iter: int = 1000,
) -> dict[str, Any]:
    """Multinomial logistic regression probe; ``top1`` (percent) and per-class-mean top-1."""
    xtr, xte = _features(train_x, normalize), _features(test_x, normalize)
    ytr = np.asarray(train_y).astype(int).reshape(-1)
    yte = np.asarray(test_y).astype(int).reshape(-1)

    def make(cc: float) -> LogisticRegression:
        return LogisticRegression(C=cc, max_iter=max_iter, random_state=seed)

    best_c, scores = _pick_c(make, xtr, ytr, c_grid, n_folds, seed, "accuracy")
    pred = make(best_c).fit(xtr, ytr).predict(xte)
    correct = pred == yte
    per_class = [correct[yte == k].mean() for k in np.unique(yte)]
    return {"top1": float(100.0 * correct.mean()),
            "top1_class_mean": float(100.0 * np.mean(per_class)),
            "chosen_c": best_c, "cv_accuracy": scores, "c_grid": [float(c) for c in c_grid],
            "n_folds": n_folds, "seed": seed, "normalize": normalize}  # fmt: skip


def softmax_probe(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    n_classes: int,
    epochs: int = 30,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    batch_size: int = 1024,
    momentum: float = 0.9,
    normalize: bool = True,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Multinomial logistic regression trained by SGD in torch (momentum, cosine schedule):
    the linear probe at ImageNet scale, where scikit-learn's full-batch solvers do not fit
    1.28M x 2048 features in reasonable time and a GPU does. ``top1`` / ``top5`` in percent.

    Same model as :func:`logistic_probe` (a linear map + softmax, cross-entropy), different
    optimiser; no C search (``weight_decay`` plays its role, a stated setting)."""
    import torch

    def features(x: Any) -> torch.Tensor:
        # float32 throughout: at ImageNet scale (1.28M x 2048) a float64 copy is 21 GB
        t = torch.as_tensor(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x),
                            dtype=torch.float32)  # fmt: skip
        if t.ndim != 2:
            raise ValueError(f"features must be [n x d], got shape {tuple(t.shape)}")
        return torch.nn.functional.normalize(t, dim=1, eps=1e-12) if normalize else t

    gen = torch.Generator().manual_seed(seed)
    xtr, xte = features(train_x), features(test_x)
    ytr = torch.as_tensor(np.asarray(train_y).astype(np.int64).reshape(-1))
    yte = torch.as_tensor(np.asarray(test_y).astype(np.int64).reshape(-1))
    if int(ytr.max()) >= n_classes or int(yte.max()) >= n_classes:
        raise ValueError(f"labels must be < n_classes = {n_classes}")
    linear = torch.nn.Linear(xtr.shape[1], n_classes)
    with torch.no_grad():
        linear.weight.copy_(0.01 * torch.randn(linear.weight.shape, generator=gen))
        linear.bias.zero_()
    linear.to(device)
    opt = torch.optim.SGD(linear.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = epochs * max(1, -(-len(xtr) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=gen)
        for start in range(0, len(xtr), batch_size):
            idx = order[start : start + batch_size]
            loss = torch.nn.functional.cross_entropy(
                linear(xtr[idx].to(device)), ytr[idx].to(device)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        logits = torch.cat(
            [
                linear(xte[s : s + batch_size].to(device)).cpu()
                for s in range(0, len(xte), batch_size)
            ]
        )
    top5 = logits.topk(min(5, n_classes), dim=1).indices
    return {
        "top1": float(100.0 * (top5[:, 0] == yte).float().mean()),
        "top5": float(100.0 * (top5 == yte[:, None]).any(dim=1).float().mean()),
        "epochs": epochs, "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
        "momentum": momentum, "normalize": normalize, "seed": seed,
    }  # fmt: skip
