"""`python -m bot` is the same as the `sezim-bot` console script."""

import sys

from bot.cli import main

sys.exit(main())
