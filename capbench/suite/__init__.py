"""The cross-method suite (``benchmarks/suite``): every method's learned image encoder, the
baselines and a user's own encoder, scored on the protocols they share.

* ``encoder.py``    what the suite scores: an :class:`Encoder` (images -> (N, D), optionally
  captions -> (N, D) in the same space) and the builders of one from a module or a trunk
* ``sources.py``    where an encoder comes from: a paper row's checkpoint (run when missing), a
  random or pretrained trunk, or a user's ``module:function``
* ``config.py``     the typed row config (``encoder`` and one section per protocol)
* ``protocols.py``  the columns: each runs one ``capbench.eval.protocols`` module on an encoder,
  or says why it does not apply
* ``rows.py``       the row target ``run_row(config, ctx)``

The suite trains nothing itself: a learned encoder is always the checkpoint of the paper row
that trained it, so the suite and the paper's table score the same weights.
"""
