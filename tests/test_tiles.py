"""Tiled optimisation is exact: the tiled loss and gradient equal the whole
image's, a tiled run ends where an untiled one does, with no seams; the
memory plan tiles only when it must; a loss that cannot be tiled says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_video, sample, save
from PIL import Image

import framestyle
from framestyle.cli import main
from framestyle.host import PluginHost
from framestyle.settings import DEFAULT_STYLE_LAYERS
from framestyle.transfer.losses import (
    ContentLoss,
    GuidedStyleLoss,
    StyleLoss,
    TemporalLoss,
    TotalVariationLoss,
    gram,
)
from framestyle.transfer.memory import HISTORY, PASS_BYTES_PER_PIXEL, plan_memory
from framestyle.transfer.optimize import Task, WeightedLoss
from framestyle.transfer.pixels import to_tensor
from framestyle.transfer.tiles import Tiling, tiled_backward, tiled_features, tiled_grams

DEEP = {"content": "relu4_2", "style": DEFAULT_STYLE_LAYERS}
MIDDLE = {"content": "relu3_2", "style": {"relu1_1": 1.0, "relu2_1": 0.75, "relu3_1": 0.2}}
SHALLOW = {"content": "relu2_2", "style": {"relu1_1": 1.0, "relu2_1": 0.75}}


def photo(height: int, width: int, name: str = "coffee.jpg") -> torch.Tensor:
    """A real photo cropped to exactly ``height`` x ``width``, as a tensor."""
    rgb = sample(name, 2 * max(height, width))
    return to_tensor(np.ascontiguousarray(rgb[:height, :width]), torch.device("cpu"))


def terms(encoder, content: torch.Tensor, layers: dict) -> list[WeightedLoss]:
    """Every built-in tileable loss, with targets from real images."""
    height, width = content.shape[-2:]
    with torch.no_grad():
        target = encoder(content, [layers["content"]])[layers["content"]]
        style = photo(80, 100, "swirls.jpg")
        grams = {name: gram(value) for name, value in encoder(style, layers["style"]).items()}
    generator = torch.Generator().manual_seed(1)
    previous = torch.rand(content.shape, generator=generator)
    mask = (torch.rand((1, 1, height, width), generator=generator) > 0.3).float()
    sky = torch.linspace(1, 0, height)[:, None].expand(height, width)  # a soft region, the top
    with torch.no_grad():
        mosaic = {name: gram(value) for name, value in encoder(photo(80, 100, "mosaic.jpg"), layers["style"]).items()}
    return [WeightedLoss("content", 1.0, ContentLoss(layers["content"], target)),
            WeightedLoss("style", 5.0, StyleLoss(layers["style"], grams)),
            WeightedLoss("regions", 5.0, GuidedStyleLoss(layers["style"], [(sky, mosaic), (1 - sky, grams)])),
            WeightedLoss("tv", 2.0, TotalVariationLoss()),
            WeightedLoss("temporal", 50.0, TemporalLoss(previous, mask))]


def whole_and_tiled(encoder, layers: dict, height: int, width: int, tiling: Tiling):
    content = photo(height, width)
    losses = terms(encoder, content, layers)
    image = (0.7 * content + 0.3 * torch.rand(content.shape, generator=torch.Generator().manual_seed(2)))
    image = image.clamp(0, 1).requires_grad_()
    features = encoder(image, sorted({layer for term in losses for layer in term.loss.layers}))
    values = {term.name: term.weight * term.loss(image, features) for term in losses}
    torch.stack(list(values.values())).sum().backward()
    whole = image.grad.clone()
    image.grad = None
    tiled_values = tiled_backward(image, losses, encoder, tiling)
    return values, whole, tiled_values, image.grad


@pytest.mark.parametrize(("layers", "height", "width", "side"), [
    (SHALLOW, 61, 97, 16), (SHALLOW, 61, 97, 24), (MIDDLE, 90, 131, 48), (DEEP, 100, 150, 64),
], ids=["shallow-16", "shallow-24", "middle-48", "deep-64"])
def test_tiled_gradient_equals_the_whole_images(encoder, layers, height, width, side):
    tiling = Tiling.for_layers(side, [layers["content"], *layers["style"]])
    assert tiling.count(height, width) >= 4
    values, whole, tiled_values, tiled = whole_and_tiled(encoder, layers, height, width, tiling)
    assert torch.linalg.norm(tiled - whole) / torch.linalg.norm(whole) < 1e-4
    # Everywhere, image borders and tile borders included: no pixel's gradient is off.
    assert (tiled - whole).abs().max() / whole.abs().max() < 1e-4
    for name, value in values.items():
        assert abs(float(tiled_values[name]) - value.item()) <= 1e-5 * abs(value.item())


def test_a_halo_smaller_than_the_receptive_field_is_wrong_and_the_comparison_sees_it(encoder):
    tiling = Tiling.for_layers(16, [SHALLOW["content"], *SHALLOW["style"]], halo=2)
    _, whole, _, tiled = whole_and_tiled(encoder, SHALLOW, 61, 97, tiling)
    assert torch.linalg.norm(tiled - whole) / torch.linalg.norm(whole) > 1e-2


def test_tiled_targets_equal_one_pass(encoder):
    image = photo(75, 109)
    layers = [SHALLOW["content"], *SHALLOW["style"]]
    tiling = Tiling.for_layers(16, layers)
    whole = encoder(image, layers)
    for name, value in tiled_features(encoder, image, layers, tiling).items():
        assert value.shape == whole[name].shape
        assert torch.allclose(value, whole[name], rtol=1e-4, atol=1e-4 * float(whole[name].abs().max()))
    for name, value in tiled_grams(encoder, image, layers, tiling).items():
        expected = gram(whole[name])
        assert torch.linalg.norm(value - expected) / torch.linalg.norm(expected) < 1e-5


def seam_score(rgb: np.ndarray, side: int) -> float:
    """How much larger the step between neighbouring lines of pixels is
    across the tile borders (every ``side`` pixels, both ways) than across
    the other lines: the difference of the means, in standard errors of
    the border lines' mean. A seam stands out; exact tiles stay within noise."""
    at_borders, elsewhere = [], []
    for axis in (0, 1):
        steps = np.abs(np.diff(rgb.astype(float), axis=axis)).mean(axis=(1 - axis, 2))  # steps[i]: line i to i+1
        steps /= steps.mean()
        border = np.zeros(len(steps), dtype=bool)
        border[np.arange(side, rgb.shape[axis], side) - 1] = True
        at_borders += list(steps[border])
        elsewhere += list(steps[~border])
    return float((np.mean(at_borders) - np.mean(elsewhere)) / (np.std(elsewhere) / np.sqrt(len(at_borders))))


def optimise(encoder, content: torch.Tensor, tiling: Tiling | None, iterations: int) -> np.ndarray:
    losses = terms(encoder, content, SHALLOW)[:2]
    task = Task(content, losses, encoder, lambda params: torch.optim.LBFGS(params, max_iter=1, history_size=20),
                iterations, clamp_each_step=True, tiling=tiling)
    image = task.run().image
    return (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def test_the_seam_measure_sees_a_seam_from_a_broken_halo_and_none_from_exact_tiles(encoder):
    content = photo(96, 192)
    layers = [SHALLOW["content"], *SHALLOW["style"]]
    exact = optimise(encoder, content, Tiling.for_layers(48, layers), 12)
    broken = optimise(encoder, content, Tiling.for_layers(48, layers, halo=0), 12)
    assert abs(seam_score(exact, 48)) < 3
    assert seam_score(broken, 48) > 4


def test_a_tiled_run_ends_at_the_untiled_image_in_a_batch_with_an_untiled_one(tmp_path, weights):
    folder = tmp_path / "photos"
    save(folder / "big.png", sample("coffee.jpg", 120))
    save(folder / "small.png", sample("chelsea.jpg", 60))
    style = save(tmp_path / "style.png", sample("swirls.jpg", 80))
    runs = {}
    for tile in ("off", "64"):
        out = tmp_path / f"out-{tile}"
        end = framestyle.run([folder], style, out, host=PluginHost(autoload=False), weights=weights, size=120,
                             iterations=10, scales=2, precision="fp32", tile=tile, batch_size=2, report=True,
                             content_layer=MIDDLE["content"], style_layers=MIDDLE["style"],
                             margin=0)  # tiles of the images as given: the small one fits in one
        assert end.exit_code == 0
        items = {Path(item["input"]).name: item for item in
                 json.loads((out / "framestyle-run.json").read_text())["items"]}
        runs[tile] = {name: np.asarray(Image.open(out / f"{Path(name).stem}.png"), dtype=float) for name in items}
        runs[tile, "tiles"] = {name: item["tiles"] for name, item in items.items()}
    assert runs["64", "tiles"] == {"big.png": 4, "small.png": 0}  # 120x80 in 64 px tiles; 60x40 fits one
    assert runs["off", "tiles"] == {"big.png": 0, "small.png": 0}
    assert "optimised in 4 tiles" in (tmp_path / "out-64" / "framestyle-report.html").read_text()
    for name in ("big.png", "small.png"):
        # Tiles change only the rounding, which L-BFGS and the bicubic carry
        # between levels magnify: a few scattered pixels end up to 13 levels
        # off (their number and size differ from one CPU's kernels to
        # another's), so the bound is on the 99th percentile (3 levels on the
        # bf16 kind, natively or held to AVX2), which a seam, a line of
        # pixels along each tile's edge (2% of them), would break.
        difference = np.abs(runs["64"][name] - runs["off"][name])
        assert difference.mean() < 0.4 and np.percentile(difference, 99) <= 6, name


def test_a_tiled_video_matches_the_untiled_one(tmp_path, weights):
    video = make_video(tmp_path / "clip.mp4", frames=3, width=128, height=96, audio=False)
    style = save(tmp_path / "style.png", sample("swirls.jpg", 80))
    frames = {}
    for tile in ("off", "64"):
        out = tmp_path / f"out-{tile}"  # PNG frames: an encoder's choices would hide what tiles did
        # Shallow layers: a small halo, so the tiles are small and the test quick.
        end = framestyle.run([video], style, out, host=PluginHost(autoload=False), weights=weights, size=128,
                             iterations=8, first_iterations=10, precision="fp32", tile=tile, writer="frames",
                             content_layer=SHALLOW["content"], style_layers=SHALLOW["style"],
                             # The frames as given: on the wider canvas the warm frames' L-BFGS carries
                             # the tiles' last-bit gradient differences (~1e-9, measured) to ~1 level.
                             margin=0)
        assert end.exit_code == 0
        report = json.loads(out.with_name(out.name + ".report.json").read_text())
        frames[tile] = [(frame["tiles"], frame["warm"]) for frame in report["frames"]]
        frames[tile, "pixels"] = np.stack([np.asarray(Image.open(path), dtype=float)
                                           for path in sorted(out.glob("*.png"))])
    assert frames["64"] == [(4, False), (4, True), (4, True)]
    assert [tiles for tiles, _ in frames["off"]] == [0, 0, 0]
    difference = np.abs(frames["64", "pixels"] - frames["off", "pixels"])
    # The cold frame and the first warm one (temporal loss and all) are the
    # same but for a few pixels a level or a few off; later frames start
    # from results that already differ there, and differences grow as a chain's do.
    # (The bicubic carry between levels magnifies them: a mean of 0.12 level in fp32 on AVX2 CPUs.)
    # The bound on the 99th percentile (1 level on the bf16 kind, natively or held to AVX2), not the
    # single worst pixel, whose size depends on the CPU's kernels.
    assert len(difference) == 3 and difference[:2].mean() < 0.25 and np.percentile(difference[:2], 99) <= 4
    assert difference.mean() < 1


def test_auto_tiles_only_when_the_whole_pass_does_not_fit():
    layers = [DEEP["content"], *DEEP["style"]]
    roomy = plan_memory(512, 512, layers, "auto", 16 * 2**30)
    assert roomy.tiling is None and roomy.history == HISTORY
    big = plan_memory(3000, 4000, layers, "auto", 8 * 2**30)
    assert big.tiling is not None and big.tiles > 1 and 5 <= big.history < HISTORY
    assert big.tiling.carried() ** 2 * PASS_BYTES_PER_PIXEL < 8 * 2**30 < big.whole_bytes
    assert big.tiling.side % 16 == 0 and big.tiling.halo >= 85  # the pooling grid; relu5_1's receptive radius
    tight = plan_memory(3000, 4000, layers, "auto", 3 * 2**30)
    assert tight.tiling is not None and tight.tiling.side < big.tiling.side and tight.history == 0  # Adam
    assert plan_memory(3000, 4000, layers, "off", 8 * 2**30).tiling is None
    assert plan_memory(100, 100, layers, "64", 16 * 2**30).tiles == 4
    assert plan_memory(60, 60, layers, "64", 16 * 2**30).tiling is None  # one tile is the whole image


class Brightness:
    layers = ()

    def __call__(self, image, features):
        return (image.mean() - 0.9) ** 2


def test_a_loss_that_cannot_be_tiled_fails_the_images_that_need_tiles_only(tmp_path, weights, capsys):
    from framestyle.hookspecs import hookimpl
    from framestyle.types import LossSpec

    class Plugin:
        @hookimpl
        def register_losses(self, register):
            register(LossSpec("brightness", lambda job: Brightness(), 0.0, "not tileable"))

    folder = tmp_path / "photos"
    save(folder / "big.png", sample("coffee.jpg", 120))
    save(folder / "small.png", sample("chelsea.jpg", 60))
    style = save(tmp_path / "style.png", sample("swirls.jpg", 60))
    host = PluginHost(autoload=False)
    host.register(Plugin(), "brightness")
    end = framestyle.run([folder], style, tmp_path / "out", host=host, weights=weights, size=120, iterations=2,
                         scales=1, tile="64", losses={"brightness": 1.0}, margin=0)  # the images as given
    assert end.exit_code == 1 and [path.name for path, _ in end.failed] == ["big.png"]
    message = end.failed[0][1]
    assert "brightness loss cannot be computed in tiles" in message and "\n" not in message
    assert (tmp_path / "out" / "small.png").is_file() and not (tmp_path / "out" / "big.png").exists()
    # With the margin the canvas is what is tiled, and the line says whose size it gives.
    end = framestyle.run(folder / "big.png", style, tmp_path / "wide.png", host=host, weights=weights, size=120,
                         iterations=2, scales=1, tile="64", losses={"brightness": 1.0})
    line = end.failed[0][1]
    assert line.startswith("136x96 in 6 tiles of 64 px") and "(the image and its --margin);" in line


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--tile", "10", "at least 64"), ("--tile", "sometimes", "use auto, off or"),
    ("--max-memory", "lots", "not an amount of memory"),
])
def test_bad_tile_and_memory_options_are_usage_errors(tmp_path, capsys, option, value, expected):
    save(tmp_path / "a.png", sample("coffee.jpg", 40))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tmp_path / "a.png"), "--style", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"),
              option, value])
    assert exit_.value.code == 2 and expected in capsys.readouterr().err


def test_tile_settings_in_a_config_file_round_trip(tmp_path):
    from framestyle.errors import UsageError
    from framestyle.settings.files import resolve, to_toml

    config = tmp_path / "framestyle.toml"
    config.write_text('tile = 1024\nmax-memory = "8G"\nhistory = 20\n')
    settings, _ = resolve({}, config)
    assert (settings.tile, settings.max_memory, settings.history) == ("1024", 8 * 2**30, 20)
    config.write_text(to_toml(settings))
    assert resolve({}, config)[0].max_memory == 8 * 2**30
    config.write_text("tile = 10\n")
    with pytest.raises(UsageError, match="tile: --tile 10: use auto, off or a tile side"):
        resolve({}, config)
