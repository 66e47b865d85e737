"""``python -m sparkdedup``: the `sparkdedup` command (`sparkdedup.cli.main`)."""

import sys

from sparkdedup.cli import main

sys.exit(main())
