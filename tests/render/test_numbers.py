"""The one percent formatter of the dashboard, the CLI and the engine's explanation sentence."""

from __future__ import annotations

import math

import pytest

from dermascan.render.numbers import MISSING, percent


@pytest.mark.parametrize(("value", "shown"), [(0.4312, "43%"), (1.0, "100%"), (0.1, "10%"), (0.0999, "10.0%"),
                                              (0.043, "4.3%"), (0.0004, "0.0%"), (0.0, "0.0%")])
def test_one_decimal_only_under_ten_percent(value, shown):
    assert percent(value) == shown


def test_fixed_decimals_and_a_missing_value():
    assert percent(0.4312, 1) == "43.1%" and percent(0.04, 0) == "4%" and percent(None) == MISSING == "—"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_is_an_error_not_text(value):
    with pytest.raises(ValueError, match="percentage"):
        percent(value)
