"""MMDetection-compatible ``tools/analysis_tools/analyze_results.py``.

Same flags as v2's script; runs ``detforge analyze-results``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["analyze-results", *sys.argv[1:]]))
