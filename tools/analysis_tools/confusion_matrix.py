"""MMDetection-compatible ``tools/analysis_tools/confusion_matrix.py``.

Same flags as v2's script; runs ``detforge confusion-matrix``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["confusion-matrix", *sys.argv[1:]]))
