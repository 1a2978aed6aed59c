"""Per-session caches of the Compare page, keyed by (image sha256, model key, option[, CAM method]).

Toggling options back and forth must never reach the model again: full analyses (with
pixels and heatmaps, for the side-by-side view) and probability rows (for metrics) are
kept per option. Every real engine call bumps a process-wide counter (``engine_calls``),
like ``dashboard.analysis_cache`` does for the Analyze page, so tests can prove a cache hit.
Everything lives in ``st.session_state``: one clinician's images never reach another session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dermascan.errors import InvalidImage
from dermascan.evaluation.compare import option_probabilities, run_option
from dermascan.inference.analysis import Analysis
from dermascan.inference.options import PreprocessingOption
from dermascan.intake.images import read_image, sha256_hex

from . import session
from .analysis_cache import MAX_CACHED_BYTES, evict_oldest
from .call_counter import count_engine_call, engine_calls  # noqa: F401 - engine_calls for tests
from .model_cache import ModelSlot

MAX_ANALYSES = 24  # each holds an image and its heatmap; probability rows are tiny and not capped


@dataclass(frozen=True)
class Upload:
    """One uploaded image, read lazily: ``read()`` returns its bytes."""

    name: str
    sha256: str
    read: Callable[[], bytes]


def uploads_from_sources(sources) -> list[Upload]:
    """Hash each source once (the cache key) without decoding it."""
    out = []
    for name, reader in sources:
        try:
            data = reader()
        except InvalidImage:
            data = b""
        out.append(Upload(name, sha256_hex(data), reader))
    return out


def analyses_for(slot: ModelSlot, upload: Upload, options: Sequence[PreprocessingOption],
                 cam_method: str | None = None) -> dict[PreprocessingOption, Analysis]:
    """The full analysis of one image under each option, heatmaps by ``cam_method`` (None: the card's); one
    model call per option not cached yet.

    Raises ``InvalidImage`` when the image cannot be decoded.
    """
    cam_method = cam_method or slot.model.card.cam_method
    cache = session.bucket(session.COMPARE_ANALYSES)
    missing = [o for o in options if (upload.sha256, slot.key, o, cam_method) not in cache]
    if missing:
        image = read_image(upload.read())
        for option in missing:
            count_engine_call()
            [analysis] = run_option(slot.model, [image], option, hashes=[upload.sha256], names=[upload.name],
                                    cam_method=cam_method)
            cache[(upload.sha256, slot.key, option, cam_method)] = analysis
    out = {}
    for option in options:
        key = (upload.sha256, slot.key, option, cam_method)
        cache[key] = cache.pop(key)  # most recently used last
        out[option] = cache[key]
    evict_oldest(cache, MAX_ANALYSES, MAX_CACHED_BYTES)
    return out


def method_analyses(slot: ModelSlot, upload: Upload, option: PreprocessingOption,
                    methods: Sequence[str]) -> dict[str, Analysis]:
    """The analysis of one image under ``option`` with each CAM method in ``methods`` (cached like ``analyses_for``).

    Raises ``InvalidImage`` when the image cannot be decoded.
    """
    return {method: analyses_for(slot, upload, [option], method)[option] for method in methods}


def probabilities_for(slot: ModelSlot, uploads: Sequence[Upload], options: Sequence[PreprocessingOption]
                      ) -> tuple[list[Upload], dict[PreprocessingOption, np.ndarray], list[str]]:
    """``(readable uploads, probabilities (N, C) per option in that order, names of unreadable uploads)``.

    Images are decoded at most once per call, and only if some option lacks their row.
    """
    cache = session.bucket(session.COMPARE_PROBABILITIES)
    decoded: dict[str, np.ndarray | None] = {}
    unreadable: list[str] = []

    def pixels(upload: Upload) -> np.ndarray | None:
        if upload.sha256 not in decoded:
            try:
                decoded[upload.sha256] = read_image(upload.read())
            except InvalidImage:
                decoded[upload.sha256] = None
                unreadable.append(upload.name)
        return decoded[upload.sha256]

    for option in options:
        todo = [u for u in uploads if (u.sha256, slot.key, option) not in cache and pixels(u) is not None]
        if todo:
            count_engine_call()
            probs = option_probabilities(slot.model, [decoded[u.sha256] for u in todo], option)
            for u, row in zip(todo, probs):
                cache[(u.sha256, slot.key, option)] = row.astype(np.float32)
    readable = [u for u in uploads if all((u.sha256, slot.key, o) in cache for o in options)]
    probs = {
        o: np.array([cache[(u.sha256, slot.key, o)] for u in readable], dtype=np.float64).reshape(
            len(readable), len(slot.model.labels))
        for o in options
    }
    return readable, probs, unreadable
