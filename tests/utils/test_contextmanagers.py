"""``concurrent`` (v2's ``mmdet.utils.contextmanagers``): the seeds' async example runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch

from detforge.utils.contextmanagers import concurrent


def test_the_body_runs_and_the_queue_keeps_its_streams() -> None:
    async def run() -> tuple[list[int], int]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        streams = [torch.cuda.Stream() for _ in range(2)] if torch.cuda.is_available() else []
        for stream in streams:
            queue.put_nowait(stream)
        done: list[int] = []

        async def one(i: int) -> None:
            async with concurrent(queue):
                await asyncio.sleep(0)
                done.append(i)

        await asyncio.gather(*(one(i) for i in range(4)))
        return sorted(done), queue.qsize()

    done, left = asyncio.run(run())
    assert done == [0, 1, 2, 3]
    assert left == (2 if torch.cuda.is_available() else 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA streams")
def test_a_queue_of_non_streams_is_refused() -> None:
    async def run() -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        queue.put_nowait("not a stream")
        async with concurrent(queue):
            pass

    with pytest.raises(TypeError, match=r"must hold torch\.cuda\.Stream objects, got str"):
        asyncio.run(run())
