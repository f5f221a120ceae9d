"""MMDetection-compatible ``tools/analysis_tools/optimize_anchors.py``.

Same flags as v2's script; runs ``detforge optimize-anchors``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["optimize-anchors", *sys.argv[1:]]))
