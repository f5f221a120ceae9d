"""Detect objects in a live camera stream (MMDetection v2's ``demo/webcam_demo.py``).

Press Esc or Q in the window to stop. Example:
    python demo/webcam_demo.py config.py model.pth --device cpu --camera-id 0
"""

import sys
from argparse import ArgumentParser, Namespace

import cv2

from detforge.apis import inference_detector, init_detector
from detforge.visualization import imshow


def parse_args(argv=None) -> Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--device", type=str, default="cuda:0", help="CPU/CUDA device option")
    parser.add_argument("--camera-id", type=int, default=0, help="camera device id")
    parser.add_argument("--score-thr", type=float, default=0.5, help="bbox score threshold")
    return parser.parse_args(argv)


def main(args: Namespace) -> int:
    camera = cv2.VideoCapture(args.camera_id)
    if not camera.isOpened():
        sys.exit(
            f"webcam_demo: no camera could be opened with --camera-id {args.camera_id} "
            "(is one connected, and is this process allowed to use it?)"
        )
    model = init_detector(args.config, args.checkpoint, device=args.device)
    print("Press Esc, q or Q to quit")
    try:
        while True:
            ok, img = camera.read()
            if not ok:
                sys.exit(f"webcam_demo: camera {args.camera_id} stopped delivering frames")
            result = inference_detector(model, img)
            drawn = model.show_result(img, result, score_thr=args.score_thr)
            if imshow(drawn, "webcam", 1) in (27, ord("q"), ord("Q")):
                break
    finally:
        camera.release()
    cv2.destroyAllWindows()
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
