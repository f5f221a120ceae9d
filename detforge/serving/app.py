"""The FastAPI app behind ``detforge serve``.

Endpoints: ``POST /predict`` (multipart upload or raw image bytes; ``?format=image`` returns
the drawn PNG), ``GET /main?image=NAME`` (the old Tornado app's call, limited to
``image_root``), ``GET /health``, ``GET /metadata``, ``GET /`` (the web page) and FastAPI's
``/openapi.json`` and ``/docs``. Every error answers ``{"error": message}`` with a 4xx/5xx
status and a short message that shows no server path, object repr or traceback (the server log
has the details of a 500). One worker thread runs the model in micro-batches of images of one
shape (:mod:`detforge.serving.batching`), so an answer does not depend on what else is in
flight. Each image is charged its pixel count, read from the header, against a budget shared by
all requests before it is decoded (:mod:`detforge.serving.budget`), which bounds the memory
that decoded images take however many clients upload at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from detforge import __version__
from detforge.apis.inference import inference_detector
from detforge.serving.batching import BatcherBusy, MicroBatcher
from detforge.serving.budget import Budget, BudgetTimeout
from detforge.serving.limits import BodySizeLimit
from detforge.serving.security import (
    DEFAULT_MAX_ASPECT_RATIO,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_PIXELS_IN_FLIGHT,
    DecodedImage,
    ServingError,
    decode_image,
    read_image_header,
    resolve_under_root,
)
from detforge.structures.det_result import result_to_detections
from detforge.utils.device import model_device
from detforge.visualization import default_palette, draw_result

__all__ = ["create_app"]

logger = logging.getLogger("detforge.serving")

STATIC_DIR = Path(__file__).resolve().parent / "static"
_IMAGE_BODY = {"type": "string", "format": "binary"}
_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": _IMAGE_BODY},
                    "required": ["file"],
                }
            },
            "image/*": {"schema": _IMAGE_BODY},
            "application/octet-stream": {"schema": _IMAGE_BODY},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": why, "content": {"application/json": {"example": {"error": "..."}}}}
    for code, why in [
        (400, "bad request"),
        (403, "path refused"),
        (404, "not found / disabled"),
        (413, "upload or image too large"),
        (415, "not an image"),
        (422, "invalid parameter, or an image too narrow to detect in"),
        (503, "busy: queue full or no pixel budget free in time (see Retry-After)"),
    ]
}
_IMAGE_OK = {"content": {"image/png": {}}, "description": "JSON, or the drawn PNG"}


class Detection(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    bbox: list[float] = Field(description="x1, y1, x2, y2 in pixels of the sent image")
    score: float
    label: int = Field(description="class index")
    class_: str = Field(alias="class", description="class name")


class PredictResponse(BaseModel):
    detections: list[Detection]
    width: int
    height: int
    time_ms: float


def _png(img: np.ndarray, result: Any, classes: Sequence[str], score_thr: float) -> bytes:
    """PNG bytes of ``img`` with ``result`` drawn as ``detforge infer`` draws it."""
    drawn = draw_result(img, result, classes, score_thr, palette=default_palette(len(classes)))
    ok, buf = cv2.imencode(".png", drawn)
    if not ok:
        raise RuntimeError(f"could not encode a {drawn.shape} image as PNG")
    return buf.tobytes()


def _relative_to_root(root: Path, image: str | None) -> str:
    """``--compat-v2``: an absolute ``image`` inside ``root`` as a path relative to it (the
    containment check then runs on it as on any name); anything else unchanged."""
    if not image or not os.path.isabs(image):
        return image or ""
    absolute = Path(os.path.abspath(image))
    for base in (root, Path(os.path.abspath(root))):
        if absolute.is_relative_to(base):
            return str(absolute.relative_to(base))
    return image


def create_app(
    model: Any,
    *,
    score_thr: float = 0.3,
    max_batch: int = 8,
    max_upload_mb: float = 20.0,
    image_root: str | os.PathLike[str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_wait_ms: float = 2.0,
    max_queue: int = 1024,
    config_name: str | None = None,
    max_pixels_in_flight: int = DEFAULT_MAX_PIXELS_IN_FLIGHT,
    pixel_wait_s: float = 5.0,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
    compat_v2: bool = False,
) -> FastAPI:
    """Build the service app around a detector from ``init_detector``.

    Args:
        model: The detector (its ``CLASSES`` and ``cfg`` name classes and config); it runs
            as ``inference_detector(model, imgs)`` on lists of BGR arrays.
        score_thr: Default score threshold of ``/predict`` and ``/main`` (``?score_thr=``
            overrides it per request).
        max_batch: Most images per forward pass.
        max_upload_mb: Larger request bodies get 413.
        image_root: The folder ``GET /main?image=NAME`` may read; ``None`` disables it.
        max_pixels: Images with more pixels get 413 before they are decoded.
        max_wait_ms: How long the worker waits to fill a batch once it holds an image.
        max_queue: Most images waiting for the model; more get 503.
        config_name: Shown by ``/metadata`` (default: the model config's file name).
        max_pixels_in_flight: Pixels that the images of all requests in progress may hold
            together (``?format=image`` counts twice: the drawn copy). A request takes its
            image's pixel count, read from the header, before decoding it and gives it back
            once answered; decoded images thus take at most about 3 bytes per pixel of this
            (7 while OpenCV decodes). Must be at least ``max_pixels``.
        pixel_wait_s: How long a request waits for pixels to become free; then 503 with
            ``Retry-After``.
        max_aspect_ratio: Images with one side over this many times the other get 422.
        compat_v2: Answer ``GET /main`` as the v2 demo app the old clients call: an absolute
            ``image`` path is accepted when it lies inside ``image_root`` (still 403 outside),
            and ``data`` holds v2 rows ``[x1, y1, x2, y2, label, score]`` (the detections
            stay under ``detections``).

    Example:
        >>> import uvicorn
        >>> from detforge.apis.inference import init_detector
        >>> model = init_detector('cfg.py', 'epoch_12.pth', device='cpu')  # doctest: +SKIP
        >>> uvicorn.run(create_app(model), port=8000)  # doctest: +SKIP
    """

    def run_model(imgs: list[np.ndarray]) -> Sequence[Any]:
        return list(inference_detector(model, imgs))

    if max_pixels_in_flight < max_pixels:
        raise ValueError(
            f"max_pixels_in_flight ({max_pixels_in_flight}) must be at least max_pixels "
            f"({max_pixels}), or the largest images could never be answered"
        )
    classes = tuple(model.CLASSES)
    if config_name is None:
        filename = getattr(getattr(model, "cfg", None), "filename", None)
        config_name = Path(filename).name if filename else None
    root = Path(os.path.realpath(image_root)) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise NotADirectoryError(f"--image-root {image_root} is not a directory")
    # one shape per batch: images of different sizes would be padded to the largest, and
    # GroupNorm (or any layer pooling over the image) would make an answer depend on the others
    batcher: MicroBatcher[np.ndarray, Any] = MicroBatcher(
        run_model,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        batch_key=lambda img: img.shape,
    )
    budget = Budget(limit=max_pixels_in_flight)
    counters = {"requests": 0, "refused": 0}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(batcher.stop)

    app = FastAPI(
        title="detforge serve",
        version=__version__,
        description='Object detection over HTTP. Errors answer `{"error": message}`.',
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.pixel_budget = budget
    app.add_middleware(BodySizeLimit, max_bytes=int(max_upload_mb * 2**20))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def error(
        request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        counters["refused"] += 1
        body: dict[str, Any] = {"error": message}
        if request.url.path == "/main":
            body["status"] = 1  # the Tornado app's failure flag
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, exc: ServingError) -> JSONResponse:
        return error(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return error(request, 422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the message of an unexpected error may hold paths or reprs: it goes to the log only
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error(request, 500, "internal error; the server log has the details")

    async def detect(data: bytes, thr: float, fmt: str, started: float) -> bytes | dict[str, Any]:
        """The PNG bytes (``fmt == 'image'``) or the JSON payload for one image's bytes."""
        counters["requests"] += 1
        width, height, _ = await run_in_threadpool(
            read_image_header, data, max_pixels, max_aspect_ratio
        )
        pixels = width * height * (2 if fmt == "image" else 1)
        if pixels > budget.limit:
            raise ServingError(
                413,
                f"image too large: {width}x{height} as a drawn PNG needs {pixels} pixels "
                f"in flight, the limit is {budget.limit}; ask for format=json",
            )
        try:
            await budget.acquire_async(pixels, timeout=pixel_wait_s)
        except BudgetTimeout:
            raise ServingError(
                503,
                f"busy: no room for a {width}x{height} image within {pixel_wait_s:g} s "
                "(--max-megapixels-in-flight); retry later",
                headers={"Retry-After": "1"},
            ) from None
        try:
            return await detect_decoded(data, thr, fmt, started)
        finally:  # the decoded image is gone once detect_decoded returns
            budget.release(pixels)

    async def detect_decoded(
        data: bytes, thr: float, fmt: str, started: float
    ) -> bytes | dict[str, Any]:
        decoded: DecodedImage = await run_in_threadpool(
            decode_image, data, max_pixels, max_aspect_ratio
        )
        try:
            future = batcher.submit(decoded.img)
        except BatcherBusy as exc:
            raise ServingError(503, str(exc), headers={"Retry-After": "1"}) from None
        try:
            result = await asyncio.wrap_future(future)
        except Exception as exc:
            logger.error("inference failed on a %s image", decoded.img.shape, exc_info=exc)
            raise ServingError(500, "inference failed; the server log has the details") from None
        if fmt == "image":
            return await run_in_threadpool(_png, decoded.img, result, classes, thr)
        return {
            "detections": result_to_detections(result, classes, thr),
            "width": decoded.width,
            "height": decoded.height,
            "time_ms": round((time.perf_counter() - started) * 1000.0, 3),
        }

    def answer(payload: Any) -> Response:
        if isinstance(payload, bytes):
            return Response(payload, media_type="image/png")
        return JSONResponse(payload)

    ThrQuery = Query(None, alias="score_thr", ge=0.0, le=1.0, description=f"default {score_thr}")
    FormatQuery = Query("json", alias="format", description="json, or image for a drawn PNG")

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={**_ERRORS, 200: _IMAGE_OK},
        openapi_extra=_PREDICT_BODY,
        summary="Detect objects in an uploaded image",
    )
    async def predict(
        request: Request,
        thr_q: float | None = ThrQuery,
        fmt: Literal["json", "image"] = FormatQuery,
    ) -> Response:
        """Multipart upload (field ``file``) or raw image bytes as the body."""
        started = time.perf_counter()
        thr = score_thr if thr_q is None else thr_q
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=16)
            uploads = [v for v in form.values() if isinstance(v, UploadFile)]
            if not uploads:
                raise ServingError(400, "multipart body has no file; send it as field 'file'")
            data = await uploads[0].read()
        else:
            data = await request.body()
        return answer(await detect(data, thr, fmt, started))

    @app.get(
        "/main",
        responses={**_ERRORS, 200: _IMAGE_OK},
        summary="Detect objects in a file under --image-root (the Tornado app's call)",
    )
    async def main(
        request: Request,
        image: str | None = Query(None, description="path relative to --image-root"),
        thr_q: float | None = ThrQuery,
        fmt: Literal["json", "image"] = FormatQuery,
    ) -> Response:
        """``{"status": 0, "data": [detections], ...}`` like the old app; errors add
        ``"status": 1``."""
        started = time.perf_counter()
        if root is None:
            raise ServingError(
                404,
                "GET /main is disabled: start the server with --image-root DIR to let "
                "clients name images under DIR",
            )
        if image is None and request.method == "POST":
            form = await request.form(max_files=0, max_fields=16)
            value = form.get("image")
            image = value if isinstance(value, str) else None
        path = resolve_under_root(
            root, _relative_to_root(root, image) if compat_v2 else image or ""
        )
        try:
            size = path.stat().st_size
            if size > max_upload_mb * 2**20:
                raise ServingError(413, f"image {image!r} is {size / 2**20:.1f} MB, over the limit")
            data = await run_in_threadpool(path.read_bytes)
        except OSError as exc:  # its message holds the server's path
            raise ServingError(403, f"image {image!r}: cannot be read ({exc.strerror})") from None
        thr = score_thr if thr_q is None else thr_q
        payload = await detect(data, thr, fmt, started)
        if isinstance(payload, bytes):
            return answer(payload)
        rows: list[Any] = payload["detections"]
        if compat_v2:  # the v2 demo app's rows
            rows = [[*d["bbox"], d["label"], d["score"]] for d in rows]
        return JSONResponse(dict(status=0, image=image, data=rows, **payload))

    app.add_api_route(
        "/main", main, methods=["POST"], operation_id="main_post", include_in_schema=False
    )

    @app.get("/health", summary="Liveness: the worker runs")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok" if batcher.running else "stopped",
            "queued": batcher.stats()["queued"],
        }

    @app.get("/metadata", summary="Classes, config, device, limits and batching counters")
    async def metadata() -> dict[str, Any]:
        return {
            "classes": list(classes),
            "num_classes": len(classes),
            "config": config_name,
            "device": str(model_device(model)),
            "score_thr": score_thr,
            "max_batch": max_batch,
            "max_upload_mb": max_upload_mb,
            "max_pixels": max_pixels,
            "max_aspect_ratio": max_aspect_ratio,
            "pixels_in_flight": budget.stats(),
            "image_root_enabled": root is not None,
            "version": __version__,
            "stats": {**batcher.stats(), **counters},
        }

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app
