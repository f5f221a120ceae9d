"""MMDetection-compatible ``tools/analysis_tools/benchmark.py``.

Same flags as v2's script; runs ``detforge benchmark``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
