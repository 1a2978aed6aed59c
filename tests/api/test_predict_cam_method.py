"""``POST /api/predict``'s ``cam_method`` form field: a known method changes the map and is named back; others 422."""

from __future__ import annotations

import numpy as np
from api_helpers import png_bytes

from dermascan.cam import METHOD_NAMES


def post(client, image: bytes, **data):
    return client.post("/api/predict", files={"file": ("lesion.png", image, "image/png")}, data=data)


def test_a_chosen_method_is_used_and_named_and_the_default_is_the_cards(client, tiny_model):
    data = png_bytes(seed=7)
    default = post(client, data).json()
    assert default["cam_method"] == tiny_model.card.cam_method == "gradcam"
    chosen = post(client, data, cam_method="eigencam").json()
    assert chosen["cam_method"] == "eigencam"
    assert chosen["predictions"] == default["predictions"]  # the method explains; it never changes the answer
    assert chosen["grad_cam"] != default["grad_cam"]
    expected = tiny_model.analyze(data, cam_method="eigencam")
    assert expected.cam_method == "eigencam" and not np.allclose(expected.heatmap, tiny_model.analyze(data).heatmap)


def test_an_unknown_method_is_a_one_line_422_that_does_not_echo_it(client):
    response = post(client, png_bytes(seed=8), cam_method="<b>gradcam-9000</b>")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "gradcam-9000" not in detail
    assert all(name in detail for name in METHOD_NAMES)


def test_batch_takes_the_method_too(client):
    response = client.post("/api/batch", files=[("files", ("a.png", png_bytes(seed=9), "image/png"))],
                           data={"cam_method": "layercam"})
    assert response.status_code == 200
    assert response.json()["results"][0]["result"]["cam_method"] == "layercam"


def test_one_batch_with_several_methods_gives_each_image_its_own(tiny_model):
    from dermascan.api.batcher import DynamicBatcher, Prepared
    from dermascan.inference.preprocessing import prepare

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(4)]
    methods = ["eigencam", None, "eigencam", "layercam"]
    items = [Prepared(image=im, x=prepare(im, tiny_model.input_size, tiny_model.card.preprocessing,
                                          tiny_model.card.resize), sha256=f"{i:064x}", name=None, cam_method=m)
             for i, (im, m) in enumerate(zip(images, methods))]
    batcher = DynamicBatcher(tiny_model)
    try:
        outcomes = batcher.submit(items).result(timeout=60)
    finally:
        batcher.close()
    assert [a.cam_method for a in outcomes] == ["eigencam", "gradcam", "eigencam", "layercam"]
    for image, method, outcome in zip(images, methods, outcomes):
        expected = tiny_model.analyze(image, cam_method=method)
        assert np.allclose(outcome.heatmap, expected.heatmap, atol=1e-5)
