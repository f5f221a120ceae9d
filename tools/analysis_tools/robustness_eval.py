"""MMDetection-compatible ``tools/analysis_tools/robustness_eval.py``.

Same flags as v2's script; runs ``detforge robustness-eval``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["robustness-eval", *sys.argv[1:]]))
