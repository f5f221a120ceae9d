"""MMDetection-compatible ``tools/analysis_tools/eval_metric.py``.

Same flags as v2's script; runs ``detforge eval-metric``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["eval-metric", *sys.argv[1:]]))
