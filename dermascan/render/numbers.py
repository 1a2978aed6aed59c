"""Numbers as people read them: the one percent formatter of the dashboard, the CLI and the engine's sentences."""

from __future__ import annotations

import math

MISSING = "—"  # shown for a value that does not exist (e.g. no score in an imported CSV row)


def percent(value: float | None, digits: int | None = None) -> str:
    """``0.4312`` -> ``"43%"``; None -> ``"—"``.

    ``digits`` fixes the decimals; None shows one decimal under 10%, where rounding to a whole
    percent hides meaning (``0.04`` and ``0.004`` both read "0%"), and none above. A NaN or an
    infinity is an error, never text: such a number must not reach a screen as if it meant something.
    """
    if value is None:
        return MISSING
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Cannot show {value} as a percentage.")
    if digits is None:
        digits = 1 if value < 0.1 else 0
    return f"{value:.{digits}%}"
