"""``python -m kubesim.node ...``: the same as ``python -m kubesim node ...``."""

from .cli import main

raise SystemExit(main())
