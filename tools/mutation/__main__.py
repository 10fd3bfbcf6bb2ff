"""``python -m tools.mutation list|run``: see :mod:`tools.mutation.harness`."""

from tools.mutation.harness import main

raise SystemExit(main())
