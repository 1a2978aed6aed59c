"""dashboard.selection.follow: a table selection is an id, whatever position the row has in the next frame."""

from __future__ import annotations

from dashboard.selection import Followed, follow


def test_a_click_maps_its_position_through_the_frame_that_was_drawn():
    drawn = Followed(ids=(3, 4, 7))
    state, ticked = follow(drawn, [1], [7, 3])  # the click was on the frame drawn: position 1 is case 4
    assert state.selected == 4 and ticked == []  # the next frame lacks case 4: nothing else is ticked


def test_the_tick_follows_the_case_to_its_new_position():
    state, ticked = follow(Followed(ids=(3, 4, 7)), [1], [3, 4, 7])
    assert (state.selected, ticked) == (4, [1])
    state, ticked = follow(state, [1], [9, 3, 4, 7])  # an imported row before it
    assert (state.selected, ticked) == (4, [2])
    state, ticked = follow(state, [2], [7, 4])  # sorted and filtered: same case, new position
    assert (state.selected, ticked) == (4, [1])
    state, ticked = follow(state, [1], [7])  # hidden: kept, nothing ticked
    assert (state.selected, ticked) == (4, [])
    state, ticked = follow(state, [], [7, 4])  # shown again: ticked again
    assert (state.selected, ticked) == (4, [1])


def test_deselecting_or_a_stale_position_selects_nothing():
    state, _ = follow(Followed(ids=(3, 4)), [0], [3, 4])
    state, ticked = follow(state, [], [3, 4])  # the reviewer unticked the row
    assert (state.selected, ticked) == (None, [])
    state, ticked = follow(Followed(ids=(3,)), [5], [3])  # a position the drawn frame never had
    assert (state.selected, ticked) == (None, [])
    state, ticked = follow(Followed(selected=3, ids=(3,), ticked=(0,)), [0], [3])  # no click: unchanged
    assert (state.selected, ticked) == (3, [0])
