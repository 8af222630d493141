"""The benchmark runner: papers and rows as data, run records, the leaderboard.

* ``paper.py`` / ``catalog.py``: ``benchmarks/<paper>/paper.yaml`` (schema in
  ``PAPER_SCHEMA.md``) and the rows found next to it or in ``--include`` folders.
* ``config.py``: row configs with ``base:`` inheritance, ``--set`` overrides, a stable hash.
* ``runner.py``: (row, profile, seed, hash) jobs; skip-if-done, stable work dirs (resume),
  run records; ``launchers.py``: SLURM through submitit.
* ``record.py`` / ``provenance.py``: the typed run record and where its numbers came from.
* ``summary.py`` / ``check.py`` / ``golden.py`` / ``compare.py`` / ``report/``: cells with
  status, the regression gate, golden scenes numbers, deltas explained, Markdown/PNG/HTML.

Submodules are imported where used, so ``import capbench.bench`` stays cheap.
"""
