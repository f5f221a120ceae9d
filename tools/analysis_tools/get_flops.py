"""MMDetection-compatible ``tools/analysis_tools/get_flops.py``.

Same flags as v2's script; runs ``detforge get-flops``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["get-flops", *sys.argv[1:]]))
