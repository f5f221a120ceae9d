"""The older MMDetection v2 path ``tools/get_flops.py`` (from before tools/ had sub-folders).

A thin alias of ``tools/analysis_tools/get_flops.py``: same flags;
runs ``detforge get-flops``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["get-flops", *sys.argv[1:]]))
