"""The embedded scenes dataset: procedurally rendered, captioned scenes written in every real
on-disk format (Visual Genome, COCO + Karpathy, Flickr8k/30k, CUB + cvpr2016, Flowers, VOC 2007,
graded retrieval) plus a simulated user study. See ``data_cards/scenes.md``.

Entry points: ``capbench.data.scenes.generate.generate`` (write a directory),
``capbench.data.scenes.generate.build`` (everything in memory) and the ``capbench data scenes``
command (``capbench.data.scenes.cli``).
"""
