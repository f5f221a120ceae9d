"""MMDetection-compatible ``tools/misc/browse_dataset.py``.

Same flags as v2's script; runs ``detforge browse-dataset``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["browse-dataset", *sys.argv[1:]]))
