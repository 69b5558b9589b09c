"""Mixed precision, coarse-to-fine and the benchmark's arithmetic. Speed itself
is measured by ``framestyle bench``, not here: these check that the faster
paths give the same quality and that the benchmark counts right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import sample, step_losses

from framestyle.engine.device import autocast_dtype
from framestyle.errors import UsageError
from framestyle.transfer.frame import pyramid, split_iterations


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once before any test reads the cache."""


NATIVE_BF16 = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@pytest.fixture
def activation_dtypes(monkeypatch) -> list[torch.dtype]:
    """The dtype of every activation the network hands the losses."""
    import framestyle.engine.runtime

    seen: list[torch.dtype] = []
    original = framestyle.engine.runtime.encode_in

    def spy(*args, **kwargs):
        features = original(*args, **kwargs)
        seen.extend(value.dtype for value in features.values())
        return features

    monkeypatch.setattr(framestyle.engine.runtime, "encode_in", spy)
    return seen


def final_loss(**options) -> float:
    return min(step_losses(sample("chelsea.jpg", 64), sample("swirls.jpg", 64), size=64, iterations=100, **options))


@pytest.mark.skipif(not NATIVE_BF16, reason="bf16 on a CPU without AVX512-BF16 or AMX is emulated at a few "
                    "GFLOP/s, so these 100 iterations would take minutes; auto never picks bf16 there")
def test_bf16_reaches_the_float32_loss(weights, activation_dtypes):
    fp32 = final_loss(precision="fp32", weights=weights)
    assert set(activation_dtypes) == {torch.float32}
    activation_dtypes.clear()
    bf16 = final_loss(precision="bf16", weights=weights)
    assert set(activation_dtypes) == {torch.bfloat16}  # bf16 was used, not float32 again
    # Measured: 1.192 and 1.184 (0.7%). Early on (30 iterations) the two paths
    # differ more, 15%: projected L-BFGS takes a few erratic steps first.
    assert abs(bf16 - fp32) / fp32 < 0.05, (fp32, bf16)


@pytest.mark.parametrize("precision,native,expected", [
    ("bf16", "", torch.bfloat16), ("fp32", "", torch.float32), ("auto", "1", torch.float32),
    ("auto", "", torch.bfloat16 if NATIVE_BF16 else torch.float32)])
def test_the_network_runs_in_the_precision_asked_for(weights, activation_dtypes, monkeypatch,
                                                     precision, native, expected):
    monkeypatch.setenv("FRAMESTYLE_NO_NATIVE_BF16", native)
    step_losses(sample("chelsea.jpg", 32), sample("swirls.jpg", 32), size=32, iterations=1, precision=precision,
                weights=weights)
    assert activation_dtypes and set(activation_dtypes) == {expected}


def test_auto_precision_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("FRAMESTYLE_NO_NATIVE_BF16", raising=False)
    assert autocast_dtype("auto", cpu) == (torch.bfloat16 if NATIVE_BF16 else None)
    # As on a CPU without native bf16, whatever this one has:
    monkeypatch.setenv("FRAMESTYLE_NO_NATIVE_BF16", "1")
    assert autocast_dtype("auto", cpu) is None
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(UsageError, match="fp16: not on the CPU"):
        autocast_dtype("fp16", cpu)


def test_pyramid_and_iteration_split():
    assert pyramid(256, 170, 3) == [(128, 85), (181, 120), (256, 170)]
    assert pyramid(48, 32, 3) == [(48, 32)]  # smaller levels would starve VGG-19's deepest layers
    assert split_iterations(300, 3, 0.5) == [75, 75, 150]
    assert split_iterations(7, 3, 0.5) == [2, 1, 4] and sum(split_iterations(7, 3, 0.5)) == 7
    assert split_iterations(10, 1, 0.5) == [10]


def test_coarse_to_fine_spends_the_budget_across_levels_and_ends_at_full_size(weights, monkeypatch):
    import framestyle.transfer.optimize
    from framestyle.host import PluginHost

    steps, sizes, passes = [], [], []
    original = framestyle.transfer.optimize.run_pass

    def spy(group, encode):
        passes.append(tuple(group[0].image.shape[-2:]))
        return original(group, encode)

    monkeypatch.setattr(framestyle.transfer.optimize, "run_pass", spy)

    class Watch:
        @framestyle.hookimpl
        def on_step(self, event):
            steps.append((event.iteration, event.iterations))

        @framestyle.hookimpl(tryfirst=True)
        def init_image(self, job):
            sizes.append(tuple(job.content.shape[-2:]))

    host = PluginHost(autoload=False)
    host.register(Watch(), "watch")
    out = framestyle.stylize(sample("coffee.jpg", 96), sample("swirls.jpg", 64), size=96, iterations=12, scales=3,
                             host=host, weights=weights)
    assert out.shape == (64, 96, 3) and sizes == [(64, 96)]
    # Three levels √2 apart, 30% of the budget (4 of 12) at full size, the
    # rest shared by the coarser two: each iteration one pass at its level's
    # size, the canvas's (the image and 8 pixels of margin each side).
    assert passes == [(40, 56)] * 4 + [(57, 79)] * 4 + [(80, 112)] * 4, passes
    assert [i for i, _ in steps] == list(range(1, 13)) and {t for _, t in steps} == {12}
    assert np.asarray(out).std() > 5
    passes.clear()
    framestyle.stylize(sample("coffee.jpg", 96), sample("swirls.jpg", 64), size=96, iterations=12, scales=1,
                       weights=weights)
    assert passes == [(80, 112)] * 12  # --scales 1: full size only (the canvas)


def test_benchmark_counts_the_flops_torch_counts(weights):
    from torch.utils.flop_counter import FlopCounterMode

    from framestyle.bench import vgg_gflop
    from framestyle.settings import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS
    from framestyle.transfer.vgg import VGG19Encoder

    encoder = VGG19Encoder(weights.state, weights.pad_rgb, deepest="relu5_1")
    image = torch.rand(1, 3, 64, 96)
    with FlopCounterMode(display=False) as counter:
        encoder(image, [*DEFAULT_STYLE_LAYERS, DEFAULT_CONTENT_LAYER])
    assert vgg_gflop(64, 96) == pytest.approx(counter.get_total_flops() / 1e9, rel=1e-6)


def test_bench_command_reports_every_combination(capsys):
    from framestyle.cli import main

    assert main(["bench", "--size", "32", "--iterations", "1", "--precision", "fp32,bf16", "--batch", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "bf16" in out.splitlines()[0]  # which kind of CPU the figures come from
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("fp32", "bf16")]
    assert [(r[0], r[1]) for r in rows] == [("fp32", "1"), ("fp32", "2"), ("bf16", "1"), ("bf16", "2")]
    from framestyle.bench import vgg_gflop

    for _precision, batch, ms, per_image, gflop, achieved, peak, fraction in rows:
        assert float(gflop) == pytest.approx(2 * vgg_gflop(32, 32) * int(batch), rel=0.01)
        assert float(ms) > 0 and float(per_image) == pytest.approx(float(ms) / int(batch), rel=0.01)
        # Four significant digits printed: the printed columns agree with the fraction.
        assert float(fraction) == pytest.approx(float(achieved) / float(peak), rel=0.002, abs=0.006)
