"""``python -m detforge`` is the ``detforge`` command."""

import sys

from detforge.cli.main import main

sys.exit(main())
