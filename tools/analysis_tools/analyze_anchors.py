"""MMDetection-compatible ``tools/analysis_tools/analyze_anchors.py``.

Same flags as v2's script; runs ``detforge analyze-anchors``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["analyze-anchors", *sys.argv[1:]]))
