"""``python -m sparkdedup``: the `sparkdedup` command (`sparkdedup.cli.main`)."""

import sys

from sparkdedup.cli import main

if __name__ == "__main__":
    sys.exit(main())
