"""Model cards: round trips, overrides, validation messages."""

from __future__ import annotations

import json

import pytest

from dermascan.errors import CardError
from dermascan.model.card import (
    DEFAULT_MALIGNANT,
    HAM10000_LABELS,
    ModelCard,
    card_path_for,
    default_malignant,
    read_card,
    write_card,
)


def test_round_trip_keeps_unknown_fields(tmp_path):
    data = {"labels": ["a", "b"], "malignant_labels": ["b"], "version": "3", "team_notes": {"owner": "ml"}}
    (tmp_path / "m.card.json").write_text(json.dumps(data))
    card = read_card(tmp_path / "m.card.json")
    assert card.labels == ["a", "b"] and card.extra == {"team_notes": {"owner": "ml"}}
    write_card(card, tmp_path / "copy.json")
    again = json.loads((tmp_path / "copy.json").read_text())
    assert again["team_notes"] == {"owner": "ml"} and again["version"] == "3"


def test_sidecar_lookup_prefers_the_stem_card(tmp_path):
    model = tmp_path / "net.h5"
    assert card_path_for(model) is None
    (tmp_path / "card.json").write_text("{}")
    assert card_path_for(model).name == "card.json"
    (tmp_path / "net.card.json").write_text("{}")
    assert card_path_for(model).name == "net.card.json"


def test_overrides_replace_only_given_fields():
    card = ModelCard(labels=["a", "b"], preprocessing="tf", version="1")
    changed = card.with_overrides(preprocessing="unit", version=None)
    assert changed.preprocessing == "unit" and changed.version == "1" and card.preprocessing == "tf"
    with pytest.raises(CardError, match="Unknown model option"):
        card.with_overrides(colour="blue")


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"labels": []}, "non-empty"), ({"labels": ["a", "a"]}, "unique"),
     ({"labels": ["a"], "malignant_labels": ["z"]}, "not among the labels"),
     ({"resize": "zoom"}, "Unknown resize policy"), ({"temperature": 0}, "positive"),
     ({"thresholds": {"medium": 0.8, "high": 0.2}}, "0 <= m <= h <= 1"),
     ({"thresholds": {"high": 0.5}}, "Triage thresholds"), ({"input_size": [224]}, "input_size"),
     ({"output": "scores"}, "Unknown output kind"), ({"tta": ["identity", "zoom"]}, "tta must be distinct view names"),
     ({"tta": ["hflip", "hflip"]}, "tta must be distinct"), ({"tta": [["hflip"]]}, "tta must be distinct"),
     ({"tta": "hflip"}, "field 'tta' has the wrong type")],
)
def test_validation_messages_are_one_clear_line(fields, message):
    with pytest.raises(CardError, match=message) as info:
        ModelCard.from_dict(fields)
    assert "\n" not in str(info.value)


def test_a_card_must_be_an_object(tmp_path):
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(CardError, match="JSON object"):
        read_card(tmp_path / "c.json")


def test_a_field_of_the_wrong_type_is_a_card_error_naming_the_field():
    with pytest.raises(CardError, match="'limitations' has the wrong type"):
        ModelCard.from_dict({"labels": ["a"], "limitations": "none known"})


def test_the_default_malignant_labels_are_those_present_in_a_label_set():
    assert default_malignant(HAM10000_LABELS) == list(DEFAULT_MALIGNANT)
    assert default_malignant(["nv", "mel", "other"]) == ["mel"]
    assert default_malignant(["cat", "dog"]) == []
