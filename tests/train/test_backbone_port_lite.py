"""The Keras port of EfficientNet-Lite0 computes what the PyTorch original computes (real torch, real Keras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from port_parity import TOLERANCE, assert_refuses_partial_ports, keras_features, random_images, randomise_batchnorm

torch = pytest.importorskip("torch")
lite = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet_lite_pytorch (requirements-train.txt)")

REPO = Path(__file__).resolve().parents[2]
PTH = REPO / ".cache" / "backbones" / "efficientnet-lite0-57934424.pth"
IMAGENET_DAISY = 985
TF_SCALING = ([127.0 / 255.0] * 3, [128.0 / 255.0] * 3)  # (x - 127) / 128 as a mean and std of x / 255


def _torch_net(state: dict | None = None):
    net = lite.EfficientNet.from_name("efficientnet-lite0").eval()
    if state is not None:
        net.load_state_dict(state)
    return net


def _torch_features(net, images: np.ndarray, mean, std) -> np.ndarray:
    """The original's pooled features for uint8 NHWC images, scaled as (x / 255 - mean) / std."""
    x = (images.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    with torch.no_grad():
        return net.extract_features(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).mean(dim=(2, 3)).numpy()


@pytest.fixture(scope="module")
def keras_backbone():
    from dermascan.train.backbones.efficientnet_lite_torch import build_backbone

    return build_backbone((224, 224))


@pytest.fixture(scope="module")
def imagenet_state():
    from dermascan.train.backbones.torch_weights import load_state_dict

    if not PTH.is_file():
        pytest.skip(f"{PTH.name} not present (run `make backbone-weights`)")
    return load_state_dict(PTH)


def test_port_matches_the_original_on_random_weights(keras_backbone):
    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    torch.manual_seed(0)
    net = _torch_net()
    randomise_batchnorm(net)
    copied = port_state_dict(keras_backbone, net.state_dict())
    assert copied == 49 + 49 * 4  # 49 convolutions (stem, 16 blocks, head), 49 BatchNorms with 4 tensors each
    images = random_images(2)
    expected, got = _torch_features(net, images, *TF_SCALING), keras_features(keras_backbone, images)
    assert expected.shape == got.shape == (2, 1280)
    assert np.abs(expected).max() > 0.01  # features that are all ~0 would make any port pass
    assert np.abs(expected - got).max() < TOLERANCE


def test_port_matches_the_original_on_imagenet_weights(keras_backbone, imagenet_state):
    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    net = _torch_net(imagenet_state)
    port_state_dict(keras_backbone, imagenet_state)
    images = random_images(3)
    expected, got = _torch_features(net, images, *TF_SCALING), keras_features(keras_backbone, images)
    assert np.abs(expected - got).max() < TOLERANCE
    with torch.no_grad():  # the ImageNet classifier on the ported features gives the original's logits
        logits = net._fc(torch.from_numpy(expected)).numpy()
        from_port = net._fc(torch.from_numpy(got)).numpy()
    assert np.abs(logits - from_port).max() < 1e-3


def test_the_ported_input_scaling_is_the_one_the_weights_were_trained_with(keras_backbone, imagenet_state):
    """scikit-learn's sample flower.jpg (a daisy) is a daisy through the port's own scaling, not through mean/std."""
    import cv2
    from sklearn.datasets import load_sample_images

    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    port_state_dict(keras_backbone, imagenet_state)
    net = _torch_net(imagenet_state)
    flower = load_sample_images().images[1]
    image = cv2.resize(flower, (224, 224), interpolation=cv2.INTER_AREA)[None]
    with torch.no_grad():
        ported = net._fc(torch.from_numpy(keras_features(keras_backbone, image))).numpy()
        with_mean_std = net._fc(torch.from_numpy(
            _torch_features(net, image, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))).numpy()
    assert ported.argmax() == IMAGENET_DAISY
    assert with_mean_std.argmax() != IMAGENET_DAISY


def test_port_refuses_a_partial_state_dict(keras_backbone):
    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    assert_refuses_partial_ports(lambda state: port_state_dict(keras_backbone, state),
                                 lambda: _torch_net().state_dict(),
                                 missing="_blocks.7._depthwise_conv.weight", extra="_blocks.16._expand_conv.weight")


def test_ported_backbone_exposes_the_cam_layer_at_any_input_size(keras_backbone):
    from dermascan.cam.target import find_target
    from dermascan.train.backbones.efficientnet_lite_torch import build_backbone

    target = find_target(keras_backbone)
    assert target is not None and target.layer.name == "out_relu"
    assert tuple(target.layer.output.shape[1:]) == (7, 7, 1280)
    assert tuple(build_backbone((160, 160)).output.shape[1:]) == (5, 5, 1280)


def test_a_lite0_model_as_the_recipe_exports_it_loads_predicts_and_explains(tmp_path):
    """The export path (inference copy, card naming the backbone's weights and license) and the engine on top."""
    import dermascan
    from dermascan.model.card import HAM10000_LABELS
    from dermascan.train.architecture import build_model
    from dermascan.train.export import build_card, save_model_and_card, strip_for_inference

    labels, size = list(HAM10000_LABELS), (160, 160)
    trained = build_model(len(labels), None, 0.3, "effnet-lite0-torch", size)
    clean = strip_for_inference(trained, len(labels), 0.3, "effnet-lite0-torch", size)
    card = build_card(labels, 1.0, {"medium": 0.2, "high": 0.4}, {}, {"split_file": "model/split_v2.csv"},
                      PTH.name, "effnet-lite0-torch", size, version="test")
    assert card.preprocessing == "raw" and card.cam_layer == "out_relu"
    assert "EfficientNet-Lite0" in card.backbone["name"] and card.backbone["license"] == "Apache-2.0"
    model_path, _ = save_model_and_card(clean, card, tmp_path)

    model = dermascan.load_model(model_path)
    image = np.random.default_rng(4).integers(0, 256, (200, 150, 3), dtype=np.uint8)
    analysis = model.analyze(image)
    assert analysis.cam_layer == "out_relu" and analysis.heatmap is not None
    assert analysis.heatmap.ndim == 2 and np.all(np.isfinite(analysis.heatmap)) and analysis.heatmap.max() > 0
    expected = clean.predict(model.preprocess([image]), verbose=0)
    np.testing.assert_allclose(model.predict([image], calibrated=False), expected, atol=1e-5)
