"""The older MMDetection v2 path ``tools/publish_model.py`` (from before tools/ had sub-folders).

A thin alias of ``tools/model_converters/publish_model.py``: same flags;
runs ``detforge publish-model``.
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["publish-model", *sys.argv[1:]]))
