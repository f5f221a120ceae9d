"""MMDetection-compatible ``tools/analysis_tools/test_robustness.py``.

Same flags as v2's script; runs ``detforge test-robustness``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["test-robustness", *sys.argv[1:]]))
