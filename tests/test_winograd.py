"""VGG-19's deeper convolutions by Winograd F(4x4, 3x3) in float32 on the CPU:
the same outputs and pixel gradients as the direct convolution, used where it
is faster and nowhere else, and a whole run ends where the direct one does."""

from __future__ import annotations

import pytest
import torch
from helpers import sample, step_losses
from torch import nn

import framestyle.engine.runtime
import framestyle.transfer.winograd
from framestyle.transfer.winograd import WinogradConv


def conv(channels_in: int, channels_out: int, padding_mode: str = "zeros") -> nn.Conv2d:
    layer = nn.Conv2d(channels_in, channels_out, 3, padding=1, padding_mode=padding_mode).requires_grad_(False)
    torch.nn.init.normal_(layer.weight, std=(2 / (9 * channels_in)) ** 0.5)
    torch.nn.init.normal_(layer.bias, std=0.1)
    return layer


@pytest.mark.parametrize(("shape", "padding_mode"), [
    ((1, 16, 12, 16), "zeros"), ((2, 8, 7, 10), "zeros"), ((1, 3, 1, 5), "zeros"),
    ((1, 16, 12, 16), "reflect"), ((2, 8, 7, 10), "reflect"), ((1, 3, 2, 5), "reflect"),
    ((2, 8, 7, 10), "replicate"), ((1, 3, 1, 5), "replicate"),
])
def test_outputs_and_pixel_gradients_are_the_direct_convolutions(shape, padding_mode):
    """Any size, whole tiles or not, one image or two, either padding: what
    ``nn.Conv2d`` and its backward give, to float32 rounding."""
    generator = torch.Generator().manual_seed(sum(shape))
    direct = conv(shape[1], 6, padding_mode)
    fast = WinogradConv(direct, min_work=0)
    x = torch.randn(shape, generator=generator, requires_grad=True)
    x_fast = x.detach().clone().requires_grad_(True)
    upstream = torch.randn(shape[0], 6, *shape[2:], generator=generator)
    expected, got = direct(x), fast(x_fast)
    (expected * upstream).sum().backward()
    (got * upstream).sum().backward()
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()
    assert (x_fast.grad - x.grad).abs().max() <= 1e-5 * x.grad.abs().max()


def test_small_inputs_and_low_precision_take_the_direct_convolution():
    direct = conv(16, 8)
    fast = WinogradConv(direct, min_work=16 * 8 * 8 + 1)
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(fast(x), direct(x))  # below min_work: the direct convolution itself
    fast.min_work = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, reference = fast(x), direct(x)
    assert low.dtype == torch.bfloat16 and torch.equal(low, reference)


@pytest.fixture
def winograd_calls(monkeypatch) -> list[tuple[int, ...]]:
    """The input shape of every Winograd convolution computed."""
    calls: list[tuple[int, ...]] = []
    original = framestyle.transfer.winograd.winograd_conv

    def spy(x, *args):
        calls.append(tuple(x.shape))
        return original(x, *args)

    monkeypatch.setattr(framestyle.transfer.winograd, "winograd_conv", spy)
    return calls


def test_a_float32_cpu_run_ends_where_the_direct_one_does(weights, winograd_calls, monkeypatch):
    """At 192x128 (a 208x144 canvas with the margin), where conv3_2-conv3_4's 36x52x256 inputs are large enough
    for Winograd, forward and backward; without it (the direct convolution
    everywhere) the same run's losses agree closely. (Under bf16 autocast it
    is the direct convolution: the test above; a bf16 run here would take a
    minute where bf16 is emulated.)"""
    content, style = sample("chelsea.jpg", 192), sample("swirls.jpg", 192)
    options = {"size": 192, "iterations": 8, "scales": 1, "weights": weights, "device": "cpu"}
    fast = step_losses(content, style, precision="fp32", **options)
    assert content.shape[:2] == (128, 192)
    # Three convolutions forward and three backward, each iteration.
    assert winograd_calls.count((1, 256, 36, 52)) >= 6 * 8
    winograd_calls.clear()
    monkeypatch.setattr(framestyle.engine.runtime, "use_winograd", lambda encoder: None)
    direct = step_losses(content, style, precision="fp32", **options)
    assert winograd_calls == []
    assert len(fast) == len(direct) == 8
    # L-BFGS without a line search magnifies rounding step by step; measured: within 3e-4.
    assert all(abs(a - b) <= 3e-3 * b for a, b in zip(fast, direct, strict=True)), (fast, direct)
