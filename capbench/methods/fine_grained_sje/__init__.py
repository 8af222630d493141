"""Reed, Akata, Lee & Schiele 2016, "Learning Deep Representations of Fine-Grained Visual
Descriptions": text encoders trained against fixed image features with the structured joint
embedding (DS-SJE / DA-SJE) (``fine_grained_sje``; benchmark ``benchmarks/reed2016``).

* ``config.py``    the typed configs (every default the paper's or the Torch code's value)
* ``features.py``  the fixed image side: Reed's released ``.t7`` features or a local trunk
* ``data.py``      features + captions in one-image-per-class batches, tokenizers
* ``module.py``    the LightningModule (text encoder, SJE hinge, RMSprop)
* ``train.py``     its DataModule, resumable training, the test side of the protocol
* ``rows.py``      the row targets of Tables 1-3
* ``cli.py``       how ``capbench fit --model fine_grained_sje`` links the config
* ``cli_data.py``  its DataModule: the rows' fixed features, built from the module's config

The evaluation protocol is ``capbench.eval.protocols.zero_shot``.
"""

from __future__ import annotations

from capbench.methods.registry import MethodSpec, register_method
from capbench.registry import lazy_exports

_PKG = "capbench.methods.fine_grained_sje"

SPEC = register_method(
    MethodSpec(
        name="fine_grained_sje",
        paper="reed2016",
        summary="Reed et al. 2016: text encoders (char/word CNN, LSTM, CNN-RNN, BoW, ...) "
        "trained against fixed image features with DS-SJE / DA-SJE",
        module=f"{_PKG}.module:FineGrainedSJE",
        config=f"{_PKG}.config:FineGrainedSJEConfig",
        rows=f"{_PKG}.rows:run_row",
        datamodule=f"{_PKG}.train:build_datamodule",
        fit=f"{_PKG}.train:train_fine_grained_sje",
        smoke=f"{_PKG}.config:SMOKE",
        cli=f"{_PKG}.cli:configure_parser",
        row_config=f"{_PKG}.config:row_config",
        encoder=f"{_PKG}.encoder:suite_encoder",
    )
)

_EXPORTS = {
    "FineGrainedSJE": "module",
    "FineGrainedSJEConfig": "config",
    "build_datamodule": "train",
    "train_fine_grained_sje": "train",
    "run_row": "rows",
}

__getattr__ = lazy_exports(_PKG, _EXPORTS)


__all__ = ["SPEC", *_EXPORTS]
