"""MMDetection-compatible ``tools/print_config.py``: same flags, runs ``detforge print-config``."""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["print-config", *sys.argv[1:]]))
