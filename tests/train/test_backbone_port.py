"""The Keras port of torchvision's MobileNetV2 computes what torchvision computes (real torch, real Keras)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from port_parity import TOLERANCE, assert_refuses_partial_ports, keras_features, random_images, randomise_batchnorm

torch = pytest.importorskip("torch")


def _import_torchvision():
    """torchvision, even when its compiled ops do not match the installed torch build.

    The shared venv has torchvision's CUDA wheel beside CPU torch: ``import torchvision`` then fails
    registering ``torchvision::nms``. The model definitions are pure Python and never call those ops,
    so the op registrations are skipped and the import retried.
    """
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        import torchvision
    except ImportError:
        pytest.skip("torchvision not installed (requirements-train.txt)")
    return torchvision


torchvision = _import_torchvision()

REPO = Path(__file__).resolve().parents[2]
PTH_NAME = "mobilenet_v2-b0353104.pth"


def _real_pth(tmp_path: Path) -> Path | None:
    """The ImageNet .pth that `make backbone-weights` extracts; None when it has not been run."""
    cached = REPO / ".cache" / "backbones" / PTH_NAME
    return cached if cached.is_file() else None


def _torch_features(net, images: np.ndarray) -> np.ndarray:
    """torchvision's pooled features for uint8 NHWC images, normalised as torchvision's transforms do."""
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    x = (images.astype(np.float32) / 255.0 - mean) / std
    with torch.no_grad():
        maps = net.features(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        return maps.mean(dim=(2, 3)).numpy()


@pytest.fixture(scope="module")
def keras_backbone():
    from dermascan.train.backbones.mobilenet_v2_torch import build_backbone

    return build_backbone((224, 224))


def test_port_matches_torchvision_on_random_weights(keras_backbone):
    from dermascan.train.backbones.mobilenet_v2_torch import port_state_dict

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v2(weights=None).eval()
    randomise_batchnorm(net)
    copied = port_state_dict(keras_backbone, net.state_dict())
    assert copied == 52 + 52 * 4  # 52 convolutions, 52 BatchNorms with 4 tensors each
    images = random_images(2)
    expected, got = _torch_features(net, images), keras_features(keras_backbone, images)
    assert expected.shape == got.shape == (2, 1280)
    assert np.abs(expected).max() > 0.01  # features that are all ~0 would make any port pass
    assert np.abs(expected - got).max() < TOLERANCE


def test_port_matches_torchvision_on_imagenet_weights(keras_backbone, tmp_path):
    from dermascan.train.backbones.mobilenet_v2_torch import port_state_dict
    from dermascan.train.backbones.torch_weights import load_state_dict

    pth = _real_pth(tmp_path)
    if pth is None:
        pytest.skip(f"{PTH_NAME} not present (run `make backbone-weights`)")
    state = load_state_dict(pth)
    net = torchvision.models.mobilenet_v2(weights=None).eval()
    net.load_state_dict(state)
    port_state_dict(keras_backbone, state)
    images = random_images(3)
    expected, got = _torch_features(net, images), keras_features(keras_backbone, images)
    assert np.abs(expected - got).max() < TOLERANCE
    # The classifier on the ported features gives torchvision's ImageNet logits (the whole net agrees).
    with torch.no_grad():
        logits = net(torch.from_numpy(((images / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])
                                      .astype(np.float32).transpose(0, 3, 1, 2).copy())).numpy()
        from_port = net.classifier(torch.from_numpy(got)).numpy()
    assert np.abs(logits - from_port).max() < 1e-3


def test_port_refuses_a_partial_state_dict(keras_backbone):
    from dermascan.train.backbones.mobilenet_v2_torch import port_state_dict

    assert_refuses_partial_ports(lambda state: port_state_dict(keras_backbone, state),
                                 lambda: torchvision.models.mobilenet_v2(weights=None).state_dict(),
                                 missing="features.5.conv.1.0.weight", extra="features.19.0.weight")


def test_ported_backbone_exposes_the_cam_layer(keras_backbone):
    from dermascan.cam.target import find_target

    target = find_target(keras_backbone)
    assert target is not None and target.layer.name == "out_relu"
    assert tuple(target.layer.output.shape[1:]) == (7, 7, 1280)
