"""Score many images: decode in parallel with inference, isolate every failure.

Files are read lazily and decoded on a small thread pool while the model works on the
previous chunk (decoding and resizing release the GIL in Pillow / OpenCV). Only decoded
arrays of the chunks in flight are held, never all uploads, and no more decoded pixels than
the pixel budget allows (:mod:`dermascan.inference.budget`): each file's header is read first, a
decode reserves what it claims, and images are decoded no larger than ``max_side`` (a JPEG
straight at a reduced scale), so one chunk of 20-megapixel photos holds screen-sized copies,
not 60 MB each. One bad file becomes an error row; it never stops or spoils the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DermascanError
from ..evaluation import trust
from ..intake.images import DEFAULT_MAX_PIXELS, SCREEN_MAX_PX, header_size, read_file_bytes, read_image, sha256_hex
from .aligned import empty_aligned
from .analysis import Analysis
from .budget import BudgetClosed, PixelBudget
from .preprocessing import prepare
from .views import STABILITY_VIEWS

log = logging.getLogger(__name__)

# 32 images per compiled call: measured on 2 vCPUs, the raw forward runs ~8% faster at 32 than at 16 and the
# decode pool keeps up; larger chunks gain little and make Stop and progress coarser.
DEFAULT_CHUNK = 32
"""Images per model call everywhere: batch runs, ``LesionModel.predict``, option comparisons, the evaluation report."""


Source = tuple[str, Callable[[], bytes]]  # (display name, zero-argument reader of the file's bytes)


@dataclass
class BatchItem:
    """One file's outcome: an analysis, or a one-line error.

    ``analysis.image`` is the decoded image brought within the batch's ``max_side``, not
    necessarily the file's full resolution.
    """

    name: str
    analysis: Analysis | None = None
    error: str | None = None


@dataclass
class _Decoded:
    name: str
    image: np.ndarray | None = None
    x: np.ndarray | None = None
    sha256: str | None = None
    error: str | None = None
    reserved: int = 0  # pixels held in the budget until the item is handed over


def file_sources(paths: Iterable[str | Path]) -> list[Source]:
    """Sources reading each path when its turn comes."""
    return [(Path(p).name, (lambda p=p: read_file_bytes(p))) for p in paths]


def bytes_sources(items: Iterable[tuple[str, bytes]]) -> list[Source]:
    """Sources over bytes already in memory (uploads)."""
    return [(name, (lambda data=data: data)) for name, data in items]


def _decode(source: Source, size, preprocessing: str, resize: str, max_bytes: int | None, max_side: int | None,
            budget: PixelBudget, chunk: int) -> _Decoded:
    name, reader = source
    limits = {} if max_bytes is None else {"max_bytes": max_bytes}
    reserved = 0
    try:
        data = reader()
        claimed = header_size(data)
        input_pixels = size[0] * size[1]
        if claimed is not None and claimed[0] * claimed[1] <= DEFAULT_MAX_PIXELS:
            # What the header claims, before a pixel is allocated (a refused or unreadable header costs nothing).
            reserved = budget.acquire(claimed[0] * claimed[1] + input_pixels, chunk)
        image = read_image(data, max_side=max_side, **limits)
        x = prepare(image, size, preprocessing, resize)
        decoded = _Decoded(name, image, x, sha256_hex(data))
        decoded.reserved = min(reserved, image.shape[0] * image.shape[1] + input_pixels)
        budget.release(reserved - decoded.reserved, chunk)  # the full-size decode is gone
        return decoded
    except BudgetClosed:
        return _Decoded(name, error="The batch ended before this file was decoded.")
    except DermascanError as exc:
        budget.release(reserved, chunk)
        return _Decoded(name, error=str(exc))
    except OSError:
        budget.release(reserved, chunk)
        return _Decoded(name, error="The file could not be read.")
    except Exception as exc:  # one strange file must not end the batch
        budget.release(reserved, chunk)
        log.warning("Unexpected %s while decoding one batch file", type(exc).__name__)
        return _Decoded(name, error="The file could not be processed.")


def _chunks(sources: list[Source], size: int) -> Iterator[list[Source]]:
    for start in range(0, len(sources), size):
        yield sources[start : start + size]


def run_batch(model, sources: Iterable[Source], *, with_cam: bool = True,
              chunk_size: int = DEFAULT_CHUNK, workers: int = 2, preprocessing: str | None = None,
              resize: str | None = None, max_bytes: int | None = None, max_side: int | None = SCREEN_MAX_PX,
              budget: PixelBudget | None = None, should_stop: Callable[[], bool] | None = None,
              stability: bool = False, faithfulness: bool = False) -> Iterator[BatchItem]:
    """Yield a ``BatchItem`` per source, in order; ``with_cam=False`` skips the heatmaps (faster).

    ``stability`` adds each analysis's stability under flips and rotations, ``faithfulness`` (with heatmaps)
    its faithfulness drop: ``evaluation.trust.check``, one more forward call per chunk for both, no gradients.

    Images are decoded to fit a ``max_side`` square (None: full size) within ``budget``
    (default: a fresh ``PixelBudget`` of ``PIXEL_BUDGET`` pixels).
    """
    sources = list(sources)
    checks = (stability, faithfulness and with_cam)
    preprocessing = preprocessing or model.card.preprocessing
    resize = resize or model.card.resize
    size = model.input_size
    budget = budget or PixelBudget()

    def submit(numbered):
        if numbered is None:
            return [], -1
        index, chunk = numbered
        return [pool.submit(_decode, s, size, preprocessing, resize, max_bytes, max_side, budget, index)
                for s in chunk], index

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dermascan-decode") as pool:
        chunks = enumerate(_chunks(sources, chunk_size))
        pending, index = submit(next(chunks, None))
        try:
            while pending:
                decoded = [f.result() for f in pending]
                current = index
                pending, index = submit(next(chunks, None))  # decode the next chunk while the model runs
                items = _infer(model, decoded, with_cam, preprocessing, resize, checks)
                reserved = [d.reserved for d in decoded]
                del decoded  # the analyses hold the images now; each goes with its item
                items.reverse()
                reserved.reverse()
                while items:
                    yield items.pop()
                    budget.release(reserved.pop(), current)
                if should_stop is not None and should_stop():
                    return
        finally:
            budget.close()  # a decode waiting for pixels must not keep the pool (and this generator) alive
            for f in pending:
                f.cancel()


def _infer(model, decoded: list[_Decoded], with_cam: bool, preprocessing: str, resize: str,
           checks: tuple[bool, bool] = (False, False)) -> list[BatchItem]:
    good = [d for d in decoded if d.error is None]
    results: dict[int, Analysis | str] = {}
    if good:
        try:
            results.update(zip(map(id, good), _analyse(model, good, with_cam, preprocessing, resize, checks)))
        except Exception as exc:
            # Retry one by one, so a failure inside one image costs that image only.
            log.warning("Batch chunk failed (%s); retrying its images one by one", type(exc).__name__)
            for d in good:
                try:
                    results[id(d)] = _analyse(model, [d], with_cam, preprocessing, resize, checks)[0]
                except DermascanError as one_exc:  # e.g. the model's numbers for this image are invalid
                    results[id(d)] = str(one_exc)
                except Exception as one_exc:
                    log.warning("One batch image failed: %s", type(one_exc).__name__)
                    results[id(d)] = "The model could not analyse this image."
    items = []
    for d in decoded:
        outcome = results.get(id(d), d.error)
        if isinstance(outcome, Analysis):
            items.append(BatchItem(d.name, analysis=outcome))
        else:
            items.append(BatchItem(d.name, error=outcome))
    return items


def _analyse(model, decoded: list[_Decoded], with_cam: bool, preprocessing: str, resize: str,
             checks: tuple[bool, bool] = (False, False)) -> list[Analysis]:
    start = time.perf_counter()
    x = np.stack([d.x for d in decoded], out=empty_aligned((len(decoded), *decoded[0].x.shape)))
    # The penultimate features come out of the same compiled call: the input gate's OOD score costs no pass.
    views = model.views_for(None)  # the card's test-time augmentation (usually none)
    probs, cams, chosen, features = model.infer_prepared(x, with_cam=with_cam, views=views)
    per_image_ms = (time.perf_counter() - start) * 1000.0 / len(decoded)
    analyses = [
        model.make_analysis(d.image, probs[i], None if cams is None else cams[i], int(chosen[i]), sha256=d.sha256,
                            name=d.name, preprocessing=preprocessing, resize=resize,
                            processing_time_ms=per_image_ms, heatmap_requested=with_cam, features=features[i],
                            tta=views)
        for i, d in enumerate(decoded)
    ]
    stability, faithfulness = checks
    if stability or faithfulness:
        trust.check_or_warn(model, analyses, x, faithfulness=faithfulness,
                            views=STABILITY_VIEWS if stability else None)
    return analyses


def batch_columns(labels: list[str]) -> list[str]:
    """CSV columns of a batch table: the CLI ``batch`` command and the dashboard share them."""
    return ["file", "sha256", "top_label", *[f"p_{label}" for label in labels], "malignant_score", "triage", "gate",
            "gate_reasons", "error"]


def batch_row(item: BatchItem, labels: list[str]) -> dict:
    """One CSV row for ``item`` (probabilities empty for an error row)."""
    row = dict.fromkeys(batch_columns(labels), "")
    row["file"] = item.name
    if item.error is not None:
        row["error"] = item.error
        return row
    a = item.analysis
    row.update(sha256=a.sha256, top_label=a.top_label, malignant_score=round(a.malignant_score, 6), triage=a.triage,
               gate=a.gate_status or "", gate_reasons=a.gate_reasons or "")
    for label, p in zip(a.labels, a.probabilities):
        row[f"p_{label}"] = round(float(p), 6)
    return row
