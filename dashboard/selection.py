"""Table selections that follow a case, not a row position.

``st.dataframe`` reports a selection as row *positions* of the frame it last drew, and the browser
keeps the tick on that position when the next run draws another frame (filtered, sorted, with an
imported row inserted). Left alone, the tick and any panel read from it silently move to another
case. So the page keeps the selected row's id in the session, maps a click's position to an id
through the ids of the frame that was drawn, and before each draw puts the tick back on that id's
new position, or clears it when the current view hides the case.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class Followed:
    """What a table's selection refers to between runs."""

    selected: Hashable | None = None  # id of the selected row, whatever its position now
    ids: tuple = ()  # ids of the rows as last drawn, by position
    ticked: tuple[int, ...] = ()  # the positions the table was last drawn with as selected


def follow(state: Followed, rows_now: Sequence[int], ids: Sequence[Hashable]) -> tuple[Followed, list[int]]:
    """The new state and the positions to tick, from the table's reported ``rows_now`` and the ``ids`` to draw.

    A change of ``rows_now`` against what was last drawn is the reviewer's click; its positions refer to
    the frame last drawn (``state.ids``), never to the one about to be drawn.
    """
    rows_now = tuple(int(r) for r in rows_now)
    selected = state.selected
    if rows_now != state.ticked:
        selected = state.ids[rows_now[0]] if rows_now and 0 <= rows_now[0] < len(state.ids) else None
    ids = tuple(ids)
    ticked = (ids.index(selected),) if selected is not None and selected in ids else ()
    return Followed(selected, ids, ticked), list(ticked)


def follow_table(table_key: str, state_key: str, ids: Sequence[Hashable]) -> Hashable | None:
    """Call just before drawing table ``table_key`` with rows ``ids``: the selected id (or None).

    Re-points the table's tick (through its session state) to the selected id's row in this frame, or
    clears it when the frame does not contain that id; the id itself stays selected until the reviewer
    clicks another row, deselects, or ``clear_selection`` is called.
    """
    widget = st.session_state.get(table_key) or {}
    rows_now = list((widget.get("selection") or {}).get("rows") or [])
    state, ticked = follow(st.session_state.get(state_key, Followed()), rows_now, ids)
    if rows_now != ticked:
        st.session_state[table_key] = {"selection": {"rows": ticked, "columns": [], "cells": []}}
    st.session_state[state_key] = state
    return state.selected


def clear_selection(state_key: str) -> None:
    """Forget the selected id (the table's tick, if any, is cleared by the next ``follow_table``)."""
    state = st.session_state.get(state_key, Followed())
    st.session_state[state_key] = Followed(None, state.ids, state.ticked)
