"""The Keras port of EfficientNet-Lite0 computes what the PyTorch original computes (real torch, real Keras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from port_parity import TOLERANCE, assert_refuses_partial_ports, keras_features, random_images, randomise_batchnorm

torch = pytest.importorskip("torch")
lite = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet_lite_pytorch (requirements-train.txt)")

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / ".cache" / "backbones"
PTH = WEIGHTS / "efficientnet-lite0-57934424.pth"
IMAGENET_DAISY, IMAGENET_MILITARY_UNIFORM = 985, 652
IMAGENET_MEAN_STD = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])  # torchvision's, the wrong one for these weights
TF_SCALING = ([127.0 / 255.0] * 3, [128.0 / 255.0] * 3)  # (x - 127) / 128 as a mean and std of x / 255
CONVOLUTIONS = {"lite0": 49, "lite1": 64, "lite2": 64}  # stem, head and 16 or 21 blocks (the first has no expand)


def _torch_net(state: dict | None = None, variant: str = "lite0"):
    net = lite.EfficientNet.from_name(f"efficientnet-{variant}").eval()
    if state is not None:
        net.load_state_dict(state)
    return net


def _torch_features(net, images: np.ndarray, mean, std) -> np.ndarray:
    """The original's pooled features for uint8 NHWC images, scaled as (x / 255 - mean) / std."""
    x = (images.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    with torch.no_grad():
        return net.extract_features(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).mean(dim=(2, 3)).numpy()


def _side(variant: str) -> int:
    """The variant's native input side: the original pads for it (static "same" padding), so parity is checked there."""
    from dermascan.train.backbones.efficientnet_lite_torch import VARIANTS

    return VARIANTS[variant][2]


@pytest.fixture(scope="module", params=sorted(CONVOLUTIONS))
def variant(request):
    return request.param


@pytest.fixture(scope="module")
def variant_backbone(variant):
    from dermascan.train.backbones.efficientnet_lite_torch import build_backbone

    return build_backbone((_side(variant), _side(variant)), variant)


@pytest.fixture(scope="module")
def keras_backbone():
    from dermascan.train.backbones.efficientnet_lite_torch import build_backbone

    return build_backbone((224, 224))


@pytest.fixture(scope="module")
def imagenet_state(variant):
    from dermascan.train.backbones import BACKBONES
    from dermascan.train.backbones.torch_weights import load_state_dict

    path = WEIGHTS / BACKBONES[f"effnet-{variant}-torch"].weights_file
    if not path.is_file():
        pytest.skip(f"{path.name} not present (run `make backbone-weights`)")
    return load_state_dict(path)


def test_port_matches_the_original_on_random_weights(variant, variant_backbone):
    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    torch.manual_seed(0)
    net = _torch_net(variant=variant)
    randomise_batchnorm(net)
    copied = port_state_dict(variant_backbone, net.state_dict())
    assert copied == CONVOLUTIONS[variant] * 5  # each convolution, and its BatchNorm's 4 tensors
    images = random_images(2, size=_side(variant))
    expected, got = _torch_features(net, images, *TF_SCALING), keras_features(variant_backbone, images)
    assert expected.shape == got.shape == (2, 1280)
    assert np.abs(expected).max() > 0.01  # features that are all ~0 would make any port pass
    assert np.abs(expected - got).max() < TOLERANCE


def test_port_matches_the_original_on_imagenet_weights(variant, variant_backbone, imagenet_state):
    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    net = _torch_net(imagenet_state, variant)
    port_state_dict(variant_backbone, imagenet_state)
    images = random_images(3, size=_side(variant))
    expected, got = _torch_features(net, images, *TF_SCALING), keras_features(variant_backbone, images)
    assert np.abs(expected - got).max() < TOLERANCE
    with torch.no_grad():  # the ImageNet classifier on the ported features gives the original's logits
        logits = net._fc(torch.from_numpy(expected)).numpy()
        from_port = net._fc(torch.from_numpy(got)).numpy()
    assert np.abs(logits - from_port).max() < 1e-3


def _imagenet_probabilities(net, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net._fc(torch.from_numpy(features)).softmax(-1).numpy()[0]


def test_the_ported_input_scaling_is_the_one_the_lite0_weights_were_trained_with(keras_backbone):
    """scikit-learn's sample flower.jpg (a daisy) is a daisy through the port's own scaling, not through mean/std."""
    import cv2
    from sklearn.datasets import load_sample_images

    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict
    from dermascan.train.backbones.torch_weights import load_state_dict

    if not PTH.is_file():
        pytest.skip(f"{PTH.name} not present (run `make backbone-weights`)")
    state = load_state_dict(PTH)
    port_state_dict(keras_backbone, state)
    net = _torch_net(state)
    image = cv2.resize(load_sample_images().images[1], (224, 224), interpolation=cv2.INTER_AREA)[None]
    ported = _imagenet_probabilities(net, keras_features(keras_backbone, image))
    with_mean_std = _imagenet_probabilities(net, _torch_features(net, image, *IMAGENET_MEAN_STD))
    assert ported.argmax() == IMAGENET_DAISY
    assert with_mean_std.argmax() != IMAGENET_DAISY


def test_every_variant_names_a_photo_best_through_the_ported_scaling(variant, variant_backbone, imagenet_state):
    """matplotlib's sample portrait of Grace Hopper in uniform is "military uniform" through the port, and more
    surely than through torchvision's mean/std: the scaling is the one each checkpoint was trained with."""
    import cv2
    import matplotlib.cbook

    from dermascan.train.backbones.efficientnet_lite_torch import port_state_dict

    port_state_dict(variant_backbone, imagenet_state)
    net = _torch_net(imagenet_state, variant)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        bgr = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    side = _side(variant)
    image = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (side, side), interpolation=cv2.INTER_AREA)[None]
    ported = _imagenet_probabilities(net, keras_features(variant_backbone, image))
    with_mean_std = _imagenet_probabilities(net, _torch_features(net, image, *IMAGENET_MEAN_STD))
    assert ported.argmax() == IMAGENET_MILITARY_UNIFORM
    assert ported[IMAGENET_MILITARY_UNIFORM] > with_mean_std[IMAGENET_MILITARY_UNIFORM]


def test_variants_scale_width_and_depth_as_the_builder_does():
    from dermascan.train.backbones.efficientnet_lite_torch import round_filters, variant_stages

    assert [round_filters(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert [stage[-1] for stage in variant_stages("lite0")] == [1, 2, 2, 3, 3, 4, 1]
    assert [stage[-1] for stage in variant_stages("lite2")] == [1, 3, 3, 4, 4, 5, 1]  # first and last kept
    with pytest.raises(ValueError, match="lite9"):
        variant_stages("lite9")


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
