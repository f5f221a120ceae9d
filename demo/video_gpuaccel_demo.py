"""Detect objects in a video with the GPU (MMDetection v2's ``demo/video_gpuaccel_demo.py``).

Same flags as v2's script. Frames are decoded with OpenCV on the CPU (``--nvdecode`` is
accepted and says so) and run through the same inference as ``demo/video_demo.py``; without a
GPU the model runs on the CPU, with a note.

Example:
    python demo/video_gpuaccel_demo.py in.mp4 config.py model.pth --out out.mp4
"""

import importlib.util
import sys
from pathlib import Path

import torch


def _video_demo():
    """``demo/video_demo.py`` next to this file (the demo folder is not a package)."""
    spec = importlib.util.spec_from_file_location("video_demo", Path(__file__).with_name(
        "video_demo.py"))  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    nvdecode = "--nvdecode" in argv
    video_demo = _video_demo()
    args = video_demo.parse_args([a for a in argv if a != "--nvdecode"])
    if nvdecode:
        print("video_gpuaccel_demo: --nvdecode: frames are decoded with OpenCV on the CPU")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"video_gpuaccel_demo: no GPU here; decoding and inference on the CPU instead of "
              f"{args.device}")  # fmt: skip
        args.device = "cpu"
    return video_demo.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
