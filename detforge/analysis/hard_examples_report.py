"""Write the hard-example review: drawn images, ``index.html`` and ``summary.csv``.

Colours (RGB): true positives green, false positives orange, missed GT red, poorly localised
detections magenta with their GT box in pink; a strip under each image counts every category.
See :mod:`detforge.analysis.hard_examples` for what each category means.
"""

from __future__ import annotations

import csv
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detforge.analysis.hard_examples import ImageMatch

__all__ = ["COLORS", "CSV_FIELDS", "draw_match", "write_report"]

COLORS = {
    "tp": (0, 200, 0),
    "fp": (255, 140, 0),
    "missed": (255, 0, 0),
    "poor_loc": (255, 0, 255),
    "poor_gt": (255, 170, 220),
}
CSV_FIELDS = ("file", "n_gt", "n_det", "tp", "fp", "missed", "poor_loc", "badness")


def _name(class_names: Sequence[str], label: int) -> str:
    return class_names[label] if 0 <= label < len(class_names) else f"class {label}"


def _draw(
    img: np.ndarray, boxes: np.ndarray, texts: list[str], rgb: tuple[int, ...], score: bool = False
) -> np.ndarray:
    """Boxes in one colour, each labelled with its text (and ``|score`` when ``score``)."""
    from detforge.visualization.draw import draw_det_bboxes

    if not len(boxes):
        return img
    boxes = np.asarray(boxes, dtype=np.float32).reshape(len(boxes), -1)
    boxes = boxes[:, :5] if score else boxes[:, :4]
    return draw_det_bboxes(
        img, boxes, np.arange(len(boxes)), class_names=texts, bbox_color=tuple(rgb)
    )


def _legend(img: np.ndarray, match: ImageMatch) -> np.ndarray:
    import cv2

    from detforge.visualization.draw import text_style

    width = img.shape[1]
    _, scale, weight = text_style(*img.shape[:2])
    height = int(cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, weight)[0][1] * 2.2) + 4
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    entries = [
        ("tp", f"TP {match.tp}"),
        ("fp", f"FP {match.fp}"),
        ("missed", f"missed {match.missed}"),
        ("poor_loc", f"poor loc {match.poor_loc}"),
    ]
    x = 4
    for key, text in entries:
        r, g, b = COLORS[key]
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        cv2.rectangle(strip, (x, 3), (x + th, 3 + th), (b, g, r), -1)
        cv2.putText(
            strip,
            text,
            (x + th + 4, 3 + th),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            weight,
            cv2.LINE_AA,
        )
        x += th + tw + 18
    text = f"badness {match.badness:g}"
    cv2.putText(
        strip, text, (x, 3 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), weight, cv2.LINE_AA
    )
    return np.concatenate([img, strip], axis=0)


def draw_match(img: np.ndarray, match: ImageMatch, class_names: Sequence[str]) -> np.ndarray:
    """``img`` (BGR) with the categories of ``match`` drawn and a counting strip below.

    Example:
        >>> from detforge.analysis.hard_examples import match_image
        >>> m = match_image(np.array([[5, 5, 30, 30]]), np.array([0]), [np.zeros((0, 5))])
        >>> out = draw_match(np.zeros((60, 80, 3), np.uint8), m, ['cell'])
        >>> out.shape[1], out.shape[0] > 60, out[5, 5].tolist()  # the missed GT in red (BGR)
        (80, True, [0, 0, 255])
    """
    kinds = {"dup": "duplicate", "cls": "wrong class", "bg": "background"}
    out = _draw(
        img, match.tp_dets, [f"{_name(class_names, int(c))}" for c in match.tp_labels], COLORS["tp"]
    )
    out = _draw(out, match.poor_gt, ["GT" for _ in match.poor_gt], COLORS["poor_gt"])
    out = _draw(
        out,
        match.poor_dets,
        [
            f"poor {o:.2f} {_name(class_names, int(c))}"
            for c, o in zip(match.poor_labels, match.poor_overlaps, strict=True)
        ],
        COLORS["poor_loc"],
        score=True,
    )
    out = _draw(
        out,
        match.missed_gt,
        [f"missed {_name(class_names, int(c))}" for c in match.missed_labels],
        COLORS["missed"],
    )
    out = _draw(
        out,
        match.fp_dets,
        [
            f"FP {kinds[k]} {_name(class_names, int(c))}"
            for c, k in zip(match.fp_labels, match.fp_kinds, strict=True)
        ],
        COLORS["fp"],
        score=True,
    )
    return _legend(out, match)


def _unique_names(files: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for i, file in enumerate(files):
        base = os.path.basename(file) or f"image_{i}"
        stem, ext = os.path.splitext(base)
        ext = ext if ext.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".jpg"
        name = f"{stem}{ext}"
        if name in seen:
            name = f"{stem}_{i}{ext}"
        seen[name] = i
        names.append(name)
    return names


def _html(rows: Sequence[tuple[str, ImageMatch, str | None]], total: int) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("#", "image", *CSV_FIELDS))
    body = []
    for rank, (file, m, picture) in enumerate(rows, start=1):
        cell = (
            f'<a href="{html.escape(picture)}"><img src="{html.escape(picture)}" width="320"></a>'
            if picture
            else ""
        )
        values = (file, m.n_gt, m.n_det, m.tp, m.fp, m.missed, m.poor_loc, f"{m.badness:g}")
        tds = "".join(f"<td>{html.escape(str(v))}</td>" for v in values)
        body.append(f"<tr><td>{rank}</td><td>{cell}</td>{tds}</tr>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>hard examples</title>\n'
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;text-align:right}</style></head><body>\n"
        f"<h1>Hard examples: {len(rows)} of {total} images</h1>\n"
        "<p>Sorted by badness = fp + missed + 0.5 &times; poor_loc (worst first). Colours: "
        '<span style="color:#00c800">TP</span>, <span style="color:#ff8c00">false '
        'positive</span>, <span style="color:#ff0000">missed GT</span>, '
        '<span style="color:#ff00ff">poorly localised</span> (its GT in pink).</p>\n'
        f"<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table></body></html>\n"
    )


def write_report(
    files: Sequence[str],
    matches: Sequence[ImageMatch],
    out_dir: str | os.PathLike[str],
    class_names: Sequence[str],
    image_paths: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write ``out_dir/images/<name>`` per hard image, ``index.html`` and ``summary.csv``.

    Args:
        files: The name of each image as listed (``data_infos[i]['filename']``).
        matches: :func:`~detforge.analysis.hard_examples.match_image` of each image.
        out_dir: Output folder (created).
        class_names: Class names for the labels.
        image_paths: Where to read each image (default: ``files``).

    Returns:
        ``{'csv': ..., 'html': ..., 'images': ...}`` paths.

    Raises:
        ValueError: ``files`` and ``matches`` differ in length.
        detforge.utils.image.ImageLoadError: an image cannot be read (its path is named).

    Example:
        >>> import tempfile
        >>> from detforge.analysis.hard_examples import match_image
        >>> m = match_image(np.zeros((0, 4)), np.zeros(0), [np.zeros((0, 5))])
        >>> paths = write_report(['a.jpg'], [m], tempfile.mkdtemp(), ['cell'])
        >>> open(paths['csv']).read().splitlines()[1]
        'a.jpg,0,0,0,0,0,0,0'
    """
    from tqdm import tqdm

    from detforge.utils.fileio import atomic_write
    from detforge.utils.image import imread, imwrite

    if len(files) != len(matches):
        raise ValueError(f"{len(files)} image names but {len(matches)} matches")
    out = Path(out_dir)
    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    sources = list(image_paths) if image_paths is not None else list(files)
    names = _unique_names(files)
    hard = sorted(
        (i for i, m in enumerate(matches) if m.badness > 0),
        key=lambda i: (-matches[i].badness, i),
    )
    for i in tqdm(hard, desc="drawing hard examples", unit="img", dynamic_ncols=True):
        drawn = draw_match(imread(sources[i]), matches[i], class_names)
        imwrite(drawn, image_dir / names[i])

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for file, m in zip(files, matches, strict=True):
        writer.writerow([file, m.n_gt, m.n_det, m.tp, m.fp, m.missed, m.poor_loc, f"{m.badness:g}"])
    csv_path = out / "summary.csv"
    atomic_write(csv_path, buffer.getvalue())
    rows = [(files[i], matches[i], f"images/{names[i]}") for i in hard]
    html_path = out / "index.html"
    atomic_write(html_path, _html(rows, len(files)))
    return {"csv": csv_path, "html": html_path, "images": image_dir}
