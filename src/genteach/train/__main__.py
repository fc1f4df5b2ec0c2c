"""``python -m genteach.train``: the form ``accelerate launch -m genteach.train`` runs."""

from __future__ import annotations

import sys

from genteach.train.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
