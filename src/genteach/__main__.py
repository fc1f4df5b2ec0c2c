"""``python -m genteach``."""

from genteach.cli import main

raise SystemExit(main())
