"""Entry point: python -m plmcore."""

import sys

from plmcore.cli import main

if __name__ == "__main__":
    sys.exit(main())
