"""Per-session cache of analyses, keyed by image, model, options and explained class.

Only moving the opacity slider must never reach the model: an ``Analysis`` keeps its
coloured heatmap and re-blends it. Each real engine call goes through ``analyze`` and
bumps a process-wide counter that tests read with ``engine_calls()``.

Analyses (which hold pixels) live in ``st.session_state``, never in a cross-session
cache: one clinician's images must not be served to another session.
"""

from __future__ import annotations

from dermascan.evaluation import trust
from dermascan.inference.analysis import Analysis
from dermascan.inference.options import PreprocessingOption
from dermascan.inference.views import STABILITY_VIEWS

from . import session
from .call_counter import count_engine_call, engine_calls  # noqa: F401 - engine_calls for tests
from .model_cache import ModelSlot

MAX_CACHED = 8  # analyses kept per session
# A 100-megapixel upload holds ~300 MB of pixels (and as much again in its coloured heatmap once the
# full-size overlay is downloaded; the screen copies are at most 1460 px wide), so the cache is bounded
# by bytes too; the newest analysis always stays, whatever its size.
MAX_CACHED_BYTES = 256 * 1024 * 1024


def analyze(slot: ModelSlot, data: bytes, *, sha256: str, name: str | None, options: PreprocessingOption,
            class_label: str | None = None, cam_method: str | None = None, faithfulness: bool = False,
            stability: bool = False) -> Analysis:
    """The analysis of ``data`` explaining ``class_label`` (None: the top class) with ``cam_method`` (None: the
    card's), from cache when possible. ``faithfulness`` adds the map's faithfulness drop, ``stability`` (to the
    top-class analysis: it is the image's, whatever class is explained) the answer under flips and rotations;
    each is measured once, then kept with the cached analysis.

    Raises ``dermascan.InvalidImage`` for unreadable bytes.
    """
    options = options.resolve(slot.model.card)  # "the card's" and the card's own names are one cache entry
    cam_method = cam_method or slot.model.card.cam_method
    cache = session.bucket(session.ANALYSES)
    base_key = (sha256, slot.key, options, cam_method, None)
    if class_label is not None and base_key in cache and cache[base_key].explained_label == class_label:
        class_label = None  # the top-class map is this class's map: no second call
    key = (sha256, slot.key, options, cam_method, class_label)
    if key in cache:
        cache[key] = cache.pop(key)  # mark as most recently used
        analysis = cache[key]
    else:
        count_engine_call()
        analysis = slot.model.analyze(data, class_label=class_label, name=name, preprocessing=options.preprocessing,
                                      resize=options.resize, cam_method=cam_method, tta=options.tta)
        cache[key] = analysis
        evict_oldest(cache, MAX_CACHED, MAX_CACHED_BYTES)
    faithful = faithfulness and analysis.faithfulness_sentence is None and analysis.heatmap is not None
    stable = stability and class_label is None and analysis.stability is None
    if faithful or stable:  # both in one call
        count_engine_call()
        trust.check_or_warn(slot.model, [analysis], faithfulness=faithful, views=STABILITY_VIEWS if stable else None)
    return analysis


def evict_oldest(cache: dict, max_items: int, max_bytes: int) -> None:
    """Drop the oldest analyses of an insertion-ordered cache until both bounds hold; the newest always stays."""
    while len(cache) > 1 and (len(cache) > max_items or _cached_bytes(cache) > max_bytes):
        cache.pop(next(iter(cache)))


def _cached_bytes(cache: dict) -> int:
    # Analyses of one image at several classes share the image array: count each array once.
    return sum({id(x): x.nbytes for a in cache.values() for x in a.pixel_arrays}.values())


def cached_for_image(sha256: str, explained_label: str | None = None) -> Analysis | None:
    """A cached analysis of the image ``sha256`` (preferring ``explained_label``'s map), or None."""
    matches = [a for a in session.bucket(session.ANALYSES).values() if a.sha256 == sha256]
    for analysis in reversed(matches):
        if explained_label is None or analysis.explained_label == explained_label:
            return analysis
    return matches[-1] if matches else None
