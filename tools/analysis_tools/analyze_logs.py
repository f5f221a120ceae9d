"""MMDetection-compatible ``tools/analysis_tools/analyze_logs.py``.

Same subcommands and flags as v2's script (``plot_curve``, ``cal_train_time``); runs
``detforge analyze-logs``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["analyze-logs", *sys.argv[1:]]))
