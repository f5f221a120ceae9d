"""MMDetection-compatible ``tools/deployment/pytorch2onnx.py``: same flags, runs
``detforge export onnx`` (``config checkpoint --output-file --input-img --shape --test-img
--opset-version --show --verify --simplify --dynamic-export --skip-postprocess --cfg-options``;
``--dataset --mean --std`` are accepted and ignored with a warning: the config's
``img_norm_cfg`` and classes are used).
"""

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["export", "onnx", *sys.argv[1:]]))
