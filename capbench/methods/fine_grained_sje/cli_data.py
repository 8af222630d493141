"""The DataModule of ``capbench fit --model fine_grained_sje``.

The SJE module trains on fixed image features, not images, so the CLI cannot use the shared
``CaptionDataModule``. This one takes the module's own config sections (linked from
``model.model``, ``model.train``, ``model.pretrain`` and ``model.seed``) plus where the data is,
and builds the same ``SJEFeatureData`` that ``capbench reproduce reed2016`` trains on
(``train.build_datamodule``). It is built when the CLI instantiates it, because the module's
encoder needs what only the data knows (vocabulary size, feature size, the attribute table, the
word vectors); the CLI links those attributes into the module's arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from capbench.methods.config import as_config
from capbench.methods.fine_grained_sje.config import FineGrainedSJEConfig, ModelConfig, TrainConfig


class SJECLIData(L.LightningDataModule):
    """Fixed features and captions of ``source`` under ``root`` (Reed's training splits).

    Args:
        root: the dataset folder (a CUB or Flowers layout; relative paths are resolved from
            the working directory, as every CLI path).
        source: the reader, ``cub`` or ``flowers``.
        train_splits: the class splits trained on (Reed: train + val).
        reader_options: keyword options of the reader.
        model: the module's ``model`` section (linked: the encoder, the image source).
        train: the module's ``train`` section (linked: batch size, captions per image).
        pretrain: the module's ``pretrain`` options (linked: the scenes trunk).
        seed: the run's seed (linked from ``model.seed``).
    """

    def __init__(
        self,
        root: str = "cub",
        source: str = "cub",
        train_splits: Sequence[str] = ("train", "val"),
        reader_options: dict[str, Any] | None = None,
        model: ModelConfig | dict[str, Any] | None = None,
        train: TrainConfig | dict[str, Any] | None = None,
        pretrain: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        from capbench.methods.fine_grained_sje.train import build_datamodule

        if not Path(root).is_dir():
            raise FileNotFoundError(f"data.root: {root} is not a folder (a {source} layout)")
        cfg = FineGrainedSJEConfig(
            model=as_config(ModelConfig, model, "model"),
            train=as_config(TrainConfig, train, "train"),
            pretrain=dict(pretrain or {}),
        )
        data = {
            "source": source,
            "root": str(root),
            "train_splits": tuple(train_splits),
            "reader_options": dict(reader_options or {}),
        }
        self.features = build_datamodule(cfg, data, seed=seed)

    @property
    def vocab_size(self) -> int:
        return self.features.vocab_size

    @property
    def feature_dim(self) -> int:
        return self.features.feature_dim

    @property
    def class_attributes(self) -> Tensor | None:
        return self.features.class_attributes

    @property
    def word_vectors(self) -> Tensor | None:
        return self.features.word_vectors

    def train_dataloader(self) -> DataLoader:
        self.features.trainer = self.trainer  # DDP-aware batches need the trainer's ranks
        return self.features.train_dataloader()
