"""Detect objects in one image (MMDetection v2's ``demo/image_demo.py``, same flags).

Example:
    python demo/image_demo.py demo.jpg configs/retinanet/retinanet_r50_fpn_1x_coco.py \\
        retinanet.pth --device cpu --out-file result.jpg
"""

import asyncio
from argparse import ArgumentParser, Namespace

from detforge.apis import (
    async_inference_detector,
    inference_detector,
    init_detector,
    show_result_pyplot,
)


def parse_args(argv=None) -> Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("img", help="image file")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--out-file", default=None, help="path to the output file")
    parser.add_argument("--device", default="cuda:0", help="device used for inference")
    parser.add_argument(
        "--palette",
        default="coco",
        choices=["coco", "voc", "citys", "random"],
        help="color palette used for visualization",
    )
    parser.add_argument("--score-thr", type=float, default=0.3, help="bbox score threshold")
    parser.add_argument("--async-test", action="store_true", help="whether to set async options")
    return parser.parse_args(argv)


def main(args: Namespace) -> None:
    model = init_detector(args.config, args.checkpoint, device=args.device)
    result = inference_detector(model, args.img)
    show_result_pyplot(
        model, args.img, result, palette=args.palette, score_thr=args.score_thr,
        out_file=args.out_file,
    )  # fmt: skip


async def async_main(args: Namespace) -> None:
    model = init_detector(args.config, args.checkpoint, device=args.device)
    task = asyncio.create_task(async_inference_detector(model, args.img))
    result = await asyncio.gather(task)
    show_result_pyplot(
        model, args.img, result[0], palette=args.palette, score_thr=args.score_thr,
        out_file=args.out_file,
    )  # fmt: skip


if __name__ == "__main__":
    args = parse_args()
    if args.async_test:
        asyncio.run(async_main(args))
    else:
        main(args)
