"""``python -m alchemy_engine.cli``: the command line (what the app's N training processes run)."""

import sys

from alchemy_engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
