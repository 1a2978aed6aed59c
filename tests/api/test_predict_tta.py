"""A model card's test-time augmentation reaches ``POST /api/predict``: the response is the averaged analysis and
names its views."""

from __future__ import annotations

import numpy as np
import pytest
from api_helpers import png_bytes

VIEWS = ["identity", "hflip", "vflip"]


@pytest.fixture(scope="module")
def tta_model(tmp_path_factory):
    """The API's tiny CNN with ``"tta": VIEWS`` in its card."""
    from tiny_models import load_tiny_lesion_model

    return load_tiny_lesion_model(tmp_path_factory.mktemp("api-tta"), card={"tta": VIEWS})


def test_the_card_views_are_applied_and_named(make_client, tta_model):
    client = make_client(loader=lambda: tta_model)
    data = png_bytes(seed=11)
    body = client.post("/api/predict", files={"file": ("lesion.png", data, "image/png")}).json()
    expected = tta_model.analyze(data)
    assert body["tta"] == VIEWS == list(expected.tta)
    got = {p["label"]: p["probability"] for p in body["predictions"]}
    assert np.allclose([got[label] for label in expected.labels], expected.probabilities, atol=1e-6)
    assert not np.allclose(expected.probabilities, tta_model.analyze(data, tta=()).probabilities, atol=1e-4)


def test_a_model_without_card_views_says_none(client):
    body = client.post("/api/predict", files={"file": ("lesion.png", png_bytes(seed=12), "image/png")}).json()
    assert body["tta"] == []
