"""Hard-example review (the ``display_hardmini`` habit) as a ``tools/analysis_tools`` script.

Same flags as ``detforge hard-examples``; runs it.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["hard-examples", *sys.argv[1:]]))
