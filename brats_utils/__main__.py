"""``python -m brats_utils`` runs the command line."""

import sys

from brats_utils.cli.main import main

sys.exit(main())
