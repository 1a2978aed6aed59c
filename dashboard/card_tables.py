"""Turn a model card's nested metrics dict into tables a person can read.

Keys and values come from the model file's card (anyone's text): every one goes through ``display_text``, and
the page escapes the titles for Markdown.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dermascan.render.text import display_text

SKIPPED = {"labels", "reliability", "subgroups"}  # lists for machines (plots), or tables of their own
SUBGROUP_TITLES = {"sex": "Sex", "age_band": "Age band", "localization": "Body site"}
SUBGROUP_COLUMNS = {"group": "Group", "n": "Images", "classes": "Classes", "balanced_accuracy": "Balanced accuracy",
                    "malignant": "Malignant"}


def humanize(key: str) -> str:
    """``balanced_accuracy`` -> ``Balanced accuracy`` (``auc``/``ece`` stay upper case)."""
    if not key.islower():
        return display_text(key)
    text = " ".join(w.upper() if w in {"auc", "ece", "mel", "f1", "n"} else w for w in key.split("_"))
    return display_text(text[:1].upper() + text[1:])


def show(value: Any) -> str:
    """A metric value as text: floats to 3 decimals, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return display_text(value)


def _is_table(value: Any) -> bool:
    # A dict of dicts of scalars (per-class scores, thresholds) reads best as a grid.
    return isinstance(value, dict) and bool(value) and all(
        isinstance(v, dict) and not any(isinstance(x, (dict, list)) for x in v.values()) for v in value.values()
    )


def _is_confusion(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"labels", "matrix"}


def metric_tables(metrics: dict, prefix: str = "") -> list[tuple[str, pd.DataFrame]]:
    """``[(title, table)]``: one table of scalar metrics per group, plus grids for nested groups."""
    scalars = [{"Metric": humanize(k), "Value": show(v)} for k, v in metrics.items()
               if not isinstance(v, (dict, list)) and k not in SKIPPED]
    out = [(prefix or "Summary", pd.DataFrame(scalars))] if scalars else []
    for key, value in metrics.items():
        if key in SKIPPED:
            continue
        title = f"{prefix} · {humanize(key)}" if prefix else humanize(key)
        if _is_confusion(value):
            shown_labels = [display_text(label) for label in value["labels"]]
            out.append((title + " (rows: true, columns: predicted)",
                        pd.DataFrame(value["matrix"], index=shown_labels, columns=shown_labels)))
        elif _is_table(value):
            grid = pd.DataFrame.from_dict(value, orient="index").map(show)
            grid.columns = [humanize(str(c)) for c in grid.columns]
            grid.index = [display_text(i) for i in grid.index]
            out.append((title, grid))
        elif isinstance(value, dict):
            out.extend(metric_tables(value, title))
    return out


def _subgroup_cell(value: Any) -> str:
    return "n/a" if value is None else show(value)


def subgroup_tables(metrics: dict) -> list[tuple[str, pd.DataFrame]]:
    """``[(title, table)]`` for the card's ``metrics["subgroups"]`` ({attribute: [row dicts]}), if it has any.

    The card is anyone's file: an attribute whose rows are not a list of flat dicts is left out.
    """
    subgroups = metrics.get("subgroups") if isinstance(metrics, dict) else None
    if not isinstance(subgroups, dict):
        return []
    out = []
    for attribute, rows in subgroups.items():
        if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and not any(isinstance(v, (dict, list)) for v in r.values()) for r in rows
        ):
            continue
        columns = list(dict.fromkeys(k for r in rows for k in r))
        frame = pd.DataFrame([[_subgroup_cell(r.get(c)) for c in columns] for r in rows],
                             columns=[SUBGROUP_COLUMNS.get(c) or humanize(str(c)) for c in columns])
        out.append((SUBGROUP_TITLES.get(attribute) or humanize(str(attribute)), frame))
    return out
