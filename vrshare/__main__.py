"""``python -m vrshare``: the ``vrshare`` command."""

from .cli import main

raise SystemExit(main())
