"""The older MMDetection v2 path ``tools/analyze_logs.py`` (from before tools/ had sub-folders).

A thin alias of ``tools/analysis_tools/analyze_logs.py``: same flags;
runs ``detforge analyze-logs``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["analyze-logs", *sys.argv[1:]]))
