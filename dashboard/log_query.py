"""The Review log's worklist controls: filters and order as a ``CaseQuery``, and the page of it to show.

The page asks the store for one page of the query's cases and their count (``ReviewStore.page_cases``,
``count_matching``); it never reads the whole log.
"""

from __future__ import annotations

import math

import streamlit as st

from dermascan.reviews.admin import BANDS, NO_BAND_NAME
from dermascan.reviews.query import NO_BAND, SORTS, CaseQuery

from . import session
from .presentation import plain, triage_style

STATUS = {"All": None, "Undecided": False, "Decided": True}
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
SEARCH_MAX_CHARS = 200  # a longer search is a paste gone wrong, not something a reviewer types
SEARCH_HINT = "patient, lesion, reviewer, note, file or diagnosis"


def _band_name(band: str) -> str:
    return "No band" if band == NO_BAND_NAME else triage_style(band).title


def query_controls(session_id: str) -> CaseQuery:
    """Draw the filters and the order; the query they ask for (this session's cases first unless unticked)."""
    a, b, c, d = st.columns([1.9, 1, 1.7, 1.3])
    bands = a.pills("Triage", [*BANDS, NO_BAND_NAME], selection_mode="multi", key=session.LOG_BANDS,
                    format_func=_band_name)
    status = b.segmented_control("Status", list(STATUS), default="All", key=session.LOG_STATUS)
    text = c.text_input("Search", key=session.LOG_SEARCH, placeholder=SEARCH_HINT, max_chars=SEARCH_MAX_CHARS,
                        help=f"Every word must occur in the {SEARCH_HINT}, in any order.")
    sort = d.selectbox("Order", list(SORTS), format_func=SORTS.get, key=session.LOG_ORDER)
    first = st.toggle("This session's cases first", value=True, key=session.LOG_SESSION_FIRST)
    fields = dict(bands=tuple(NO_BAND if band == NO_BAND_NAME else band for band in bands or ()),
                  decided=STATUS.get(status), sort=sort, session_first=session_id if first else None)
    try:
        return CaseQuery(text=text or "", **fields)
    except ValueError as exc:  # too many words: the filters still apply, the search does not
        st.warning(f"The search was not applied: {plain(exc)}.", icon=":material/search_off:")
        return CaseQuery(**fields)


def is_filtered(query: CaseQuery) -> bool:
    """True when the query leaves cases out (an order alone does not)."""
    return bool(query.bands or query.decided is not None or query.words or query.session_id)


def pager(matching: int, query: CaseQuery) -> tuple[int, int]:
    """Draw the page size and number controls for ``matching`` cases; the (offset, limit) of the page to show.

    A new filter or order starts again at page 1 (page 7 of another list means nothing); a page past the end
    (cases were deleted elsewhere, or the list got shorter) becomes the last page.
    """
    state = st.session_state
    if state.get(session.LOG_QUERY) != query:
        state[session.LOG_QUERY] = query
        state[session.LOG_PAGE] = 1
    left, right, words = st.columns([1, 1, 4], vertical_alignment="bottom")
    size = left.selectbox("Cases per page", PAGE_SIZES, index=PAGE_SIZES.index(DEFAULT_PAGE_SIZE),
                          key=session.LOG_PAGE_SIZE)
    pages = max(1, math.ceil(matching / size))
    if not 1 <= int(state.get(session.LOG_PAGE, 1)) <= pages:
        state[session.LOG_PAGE] = min(max(int(state.get(session.LOG_PAGE, 1)), 1), pages)
    page = right.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=session.LOG_PAGE)
    offset = (int(page) - 1) * size
    if matching:
        words.caption(f"Cases {offset + 1:,}–{min(offset + size, matching):,} of {matching:,}"
                      + (" matching the filters" if is_filtered(query) else ""))
    else:
        words.caption("No case matches the filters." if is_filtered(query) else "No cases yet.")
    return offset, size
