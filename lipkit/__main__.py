"""``python -m lipkit COMMAND``: see ``lipkit.cli``."""

import sys

from lipkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
