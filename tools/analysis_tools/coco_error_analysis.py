"""MMDetection-compatible ``tools/analysis_tools/coco_error_analysis.py``.

Same flags as v2's script; runs ``detforge coco-error-analysis``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["coco-error-analysis", *sys.argv[1:]]))
