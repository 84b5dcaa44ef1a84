"""`python -m badge_console.cli`: the same as the badge-console command."""

import sys

from . import main

sys.exit(main())
