"""``python -m capbench``: the same entry point as the ``capbench`` console script."""

from capbench.cli import main

raise SystemExit(main())
