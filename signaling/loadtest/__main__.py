"""``python -m signaling.loadtest``: see ``signaling.loadtest.cli``."""

import sys

from signaling.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
