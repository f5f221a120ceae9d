"""Detect objects in every frame of a video (MMDetection v2's ``demo/video_demo.py``).

Example:
    python demo/video_demo.py in.mp4 config.py model.pth --device cpu --out out.mp4
"""

import sys
from argparse import ArgumentParser, Namespace

import cv2
from tqdm import tqdm

from detforge.apis import inference_detector, init_detector
from detforge.visualization import imshow


def parse_args(argv=None) -> Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", help="video file")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--device", default="cuda:0", help="device used for inference")
    parser.add_argument("--score-thr", type=float, default=0.3, help="bbox score threshold")
    parser.add_argument("--out", type=str, help="output video file")
    parser.add_argument("--show", action="store_true", help="show the video")
    parser.add_argument("--wait-time", type=float, default=1, help="frame interval (s) when shown")
    return parser.parse_args(argv)


def main(args: Namespace) -> int:
    if not (args.out or args.show):
        sys.exit(
            "video_demo: specify at least one operation (save/show the video) with --out or --show"
        )
    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        sys.exit(f"video_demo: cannot open video {args.video}")
    model = init_detector(args.config, args.checkpoint, device=args.device)
    writer = None
    if args.out:
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            sys.exit(f"video_demo: cannot write video {args.out}")
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    frames = 0
    with tqdm(total=total, unit="frame") as bar:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            result = inference_detector(model, frame)
            frame = model.show_result(frame, result, score_thr=args.score_thr)
            if args.show:
                imshow(frame, "video", max(1, int(args.wait_time * 1000)))
            if writer is not None:
                writer.write(frame)
            frames += 1
            bar.update(1)
    capture.release()
    if writer is not None:
        writer.release()
    if args.show:
        cv2.destroyAllWindows()
    print(f"video_demo: {frames} frames" + (f" written to {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
