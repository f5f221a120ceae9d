"""MMDetection-compatible ``tools/model_converters/publish_model.py``.

Same flags as v2's script; runs ``detforge publish-model``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["publish-model", *sys.argv[1:]]))
