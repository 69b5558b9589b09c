"""Styles by region (--region MASK=STYLE): each half of a picture takes its
own style (guided Gram matrices), the rest takes --style or stays the
content, and a mask that cannot be read is refused before any work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import decoded_frames, make_video, sample, save

import framestyle
from framestyle.builtin.losses import rest_of
from framestyle.cli import main
from framestyle.media.images import read_image
from framestyle.media.motion import estimate
from framestyle.settings import Settings
from framestyle.transfer.losses import style_distance
from framestyle.transfer.pixels import to_tensor
from framestyle.transfer.vgg import VGG19Encoder

WIDTH, HEIGHT = 96, 64
QUICK = {"size": WIDTH, "iterations": 30, "scales": 1}  # each half 4-13x nearer its own style (AVX2 kind)
SEAM = 8  # pixels either side of the masks' edge left out of the measure


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("regions")
    right = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    right[:, WIDTH // 2:] = 255
    return {"content": save(folder / "cat.png", sample("chelsea.jpg", WIDTH)[:HEIGHT]),
            "swirls": save(folder / "swirls.png", sample("swirls.jpg", 64)),
            "mosaic": save(folder / "mosaic.png", sample("mosaic.jpg", 64)),
            # A mask of another size: resized to the frame.
            "right": save(folder / "right.png", np.repeat(np.repeat(right, 2, 0), 2, 1))}


def nearer(weights, image: np.ndarray, parts: dict[str, Path]) -> list[str]:
    """For the left and the right half (the seam left out): the nearer style, by VGG-19's Gram statistics."""
    encoder = VGG19Encoder(weights.state, weights.pad_rgb, deepest="pool5")
    layers = dict(Settings().style_layers)
    cpu = torch.device("cpu")
    styles = {name: to_tensor(read_image(parts[name]), cpu) for name in ("swirls", "mosaic")}
    halves = [image[:, : WIDTH // 2 - SEAM], image[:, WIDTH // 2 + SEAM:]]
    return [min(styles, key=lambda name: style_distance(encoder, to_tensor(np.ascontiguousarray(half), cpu),
                                                        styles[name], layers)) for half in halves]


def test_each_region_takes_its_own_style(parts, tmp_path, weights):
    out = tmp_path / "out.png"
    end = framestyle.run(parts["content"], parts["swirls"], out, regions=[f"{parts['right']}={parts['mosaic']}"],
                         weights=weights, **QUICK)
    assert end.exit_code == 0
    assert nearer(weights, read_image(out), parts) == ["swirls", "mosaic"]
    # The same with the styles the other way round: it is the masks, not the picture.
    swapped = tmp_path / "swapped.png"
    assert framestyle.run(parts["content"], parts["mosaic"], swapped,
                          regions=[f"{parts['right']}={parts['swirls']}"], weights=weights, **QUICK).exit_code == 0
    assert nearer(weights, read_image(swapped), parts) == ["mosaic", "swirls"]


def test_the_rest_is_what_no_mask_covers():
    left, top = np.zeros((4, 6), np.float32), np.zeros((4, 6), np.float32)
    left[:, :3], top[:2] = 1.0, 0.5
    rest = rest_of([left, top])
    assert rest[:, :3].max() == 0 and rest[2:, 3:].min() == 1 and np.allclose(rest[:2, 3:], 0.5)


def test_the_rest_can_stay_the_content(parts, tmp_path, weights):
    out = tmp_path / "out.png"
    assert framestyle.run(parts["content"], parts["swirls"], out, regions=[f"{parts['right']}={parts['mosaic']}"],
                          region_rest="content", weights=weights, **QUICK).exit_code == 0
    content, styled = read_image(parts["content"]).astype(int), read_image(out).astype(int)
    left, right = slice(0, WIDTH // 2 - SEAM), slice(WIDTH // 2 + SEAM, WIDTH)
    kept = np.abs(styled[:, left] - content[:, left]).mean()
    changed = np.abs(styled[:, right] - content[:, right]).mean()
    assert kept < changed / 3, (kept, changed)  # the left half is still the photo, the right is mosaic


def test_a_folder_of_masks_gives_each_frame_its_own(parts, tmp_path, weights):
    """The mask moves: the right half in frame 1, the left in frame 2 (each frame from its own content,
    so that it is the masks the test sees)."""
    clip = make_video(tmp_path / "clip.mp4", frames=2, width=WIDTH, height=HEIGHT, audio=False)
    right = read_image(parts["right"])
    save(tmp_path / "masks" / "m_1.png", right)
    save(tmp_path / "masks" / "m_2.png", np.ascontiguousarray(right[:, ::-1]))
    out = tmp_path / "out.mp4"
    assert framestyle.run(clip, parts["swirls"], out, regions=[f"{tmp_path / 'masks'}={parts['mosaic']}"],
                          weights=weights, warm_start=False, **QUICK).exit_code == 0
    assert [nearer(weights, frame, parts) for frame in decoded_frames(out)] == [["swirls", "mosaic"],
                                                                              ["mosaic", "swirls"]]


@pytest.mark.parametrize("region, says", [
    ("{missing}=style.png", "--region mask"),
    ("{mask}", "expected MASK=STYLE"),
    ("{mask}={missing}", "no style"),
])
def test_a_region_that_cannot_be_used_is_refused_before_any_work(parts, tmp_path, region, says, capsys):
    text = region.format(missing=tmp_path / "missing.png", mask=parts["right"])
    code = main(["run", str(parts["content"]), "--style", str(parts["swirls"]), "--region", text,
                 "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.png").exists()


def test_regions_in_a_config_file_are_read_from_its_folder(tmp_path):
    from framestyle.settings.files import resolve

    config = tmp_path / "project" / "framestyle.toml"
    config.parent.mkdir()
    config.write_text('regions = ["masks/sky.png=styles/starry.jpg"]\nregion_rest = "content"\ncrf = 22\n')
    settings, used = resolve({}, config=config)
    assert used == config and settings.region_rest == "content" and settings.crf == 22
    assert settings.regions == [f"{tmp_path / 'project' / 'masks' / 'sky.png'}="
                                f"{tmp_path / 'project' / 'styles' / 'starry.jpg'}"]


def test_a_mask_video_gives_each_frame_its_own_mask_also_when_read_out_of_order(tmp_path):
    from framestyle.engine.regions import open_mask
    from framestyle.errors import InputError
    from framestyle.media.encodings import ffmpeg_exe

    masks = [np.zeros((HEIGHT, WIDTH), np.uint8) for _ in range(3)]
    for n, mask in enumerate(masks):
        mask[:, n * 32: n * 32 + 32] = 255  # a white band moving right
        save(tmp_path / f"m_{n + 1}.png", np.dstack([mask] * 3))
    video = tmp_path / "masks.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-framerate", "10", "-i", str(tmp_path / "m_%d.png"),
                    "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p", str(video)], check=True)
    source = open_mask(video)
    for index in (0, 1, 2, 1, 0):  # a segment starting later, a frame built again
        assert np.abs(source.at(index) * 255 - masks[index]).max() < 8, index
    with pytest.raises(InputError, match="ends before frame 4"):
        source.at(3)
    with pytest.raises(InputError, match="3 masks, none for frame 4"):
        open_mask(tmp_path / "m_%d.png").at(3)


def panning_frames(count: int, step: float, cut_at: int | None = None) -> list[np.ndarray]:
    """A photo seen by a camera panning right by ``step`` pixels a frame
    (the picture moves left); from ``cut_at`` on, another photo."""
    import cv2

    photo, other = sample("chelsea.jpg", 2 * WIDTH), sample("coffee.jpg", 2 * WIDTH)
    frames = []
    for t in range(count):
        seen = other if cut_at is not None and t >= cut_at else photo
        shift = np.float32([[1, 0, -step * t], [0, 1, 0]])
        frames.append(cv2.warpAffine(seen, shift, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR))
    return frames


def disc(center_x: float, radius: float = 14) -> np.ndarray:
    """A disc in the frame as a mask (an anti-aliased edge: what a drawn mask has)."""
    x, y = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT))
    return np.clip(radius + 0.5 - np.hypot(x - center_x, y - HEIGHT / 2), 0, 1).astype(np.float32)


def followed(tmp_path: Path, frames: list[np.ndarray]):
    from framestyle.engine.regions import FollowedMask, StillMask
    from framestyle.media.motion import estimate

    mask = save(tmp_path / "disc.png", np.dstack([(disc(60) * 255).round().astype(np.uint8)] * 3))
    return FollowedMask(StillMask(mask), tmp_path / "clip.mp4", lambda: iter(frames), estimate)


def test_a_followed_mask_moves_with_the_picture_and_keeps_its_edge(tmp_path):
    step = 1.5  # off the pixel grid: a chain of warps of the mask would blur its edge
    frames = panning_frames(16, step)
    follower = followed(tmp_path, frames)
    masks = [follower.at(t, WIDTH, HEIGHT, None if t == 0 else estimate(frames[t - 1], frames[t]))
             for t in range(16)]
    truth, carried = disc(60 - step * 15), masks[15]
    overlap = ((carried > 0.5) & (truth > 0.5)).sum() / ((carried > 0.5) | (truth > 0.5)).sum()
    assert overlap > 0.9, overlap  # where the disc went (not where it was drawn: no overlap there)
    soft = ((carried > 0.1) & (carried < 0.9)).sum()
    assert soft <= 2 * ((truth > 0.1) & (truth < 0.9)).sum(), soft  # an edge as sharp as drawn
    # A segment's first frame, or a resumed run's: carried again from the first frame, to the same mask.
    assert np.array_equal(followed(tmp_path, frames).at(9, WIDTH, HEIGHT, None), masks[9])
    assert np.array_equal(follower.at(15, WIDTH, HEIGHT, None), masks[15])  # a frame built again


def test_a_followed_mask_stays_where_it_was_after_a_cut(tmp_path, caplog):
    frames = panning_frames(10, 2.0, cut_at=6)
    follower = followed(tmp_path, frames)
    masks = [follower.at(t, WIDTH, HEIGHT, None if t == 0 else estimate(frames[t - 1], frames[t]))
             for t in range(10)]
    assert np.abs(masks[5] - disc(60 - 10)).mean() < 0.05  # followed through the first shot
    assert all(np.array_equal(mask, masks[5]) for mask in masks[6:])
    assert "from frame 7 (a cut) on it stays where it was" in caplog.text


def test_a_followed_mask_is_the_same_however_the_video_is_split(tmp_path, weights):
    """Masks as the stylising hook sees them, frame by frame: carried with the
    picture, and the same from two segments as from one chain."""
    import framestyle
    from framestyle.host import PluginHost

    clip = make_video(tmp_path / "clip.mp4", frames=16, width=WIDTH, height=HEIGHT, audio=False)
    left = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    left[:, : WIDTH // 2] = 255
    mask, style = save(tmp_path / "left.png", left), save(tmp_path / "style.png", sample("swirls.jpg", 48))

    def masks_seen(**options) -> dict[int, np.ndarray]:
        seen: dict[int, np.ndarray] = {}

        class Watch:
            @framestyle.hookimpl(tryfirst=True)
            def stylize(self, job, init):
                seen[job.index] = job.regions[0].mask
                return None  # the built-in goes on

        host = PluginHost(autoload=False)
        host.register(Watch(), "watch")
        out = tmp_path / f"out-{len(options)}.mp4"
        assert framestyle.run(clip, style, out, regions=[f"{mask}={style}"],
                              iterations=0, size=WIDTH, host=host, weights=weights, **options).exit_code == 0
        return seen

    whole, split = masks_seen(region_follow=True), masks_seen(region_follow=True, batch_size=2)
    assert sorted(whole) == sorted(split) == list(range(16))
    assert all(np.array_equal(whole[t], split[t]) for t in range(16))
    edge = [float(np.interp(0.5, column[::-1], np.arange(WIDTH)[::-1]))
            for column in (whole[t].mean(0) for t in (0, 15))]
    assert abs(edge[0] - WIDTH // 2) < 2 and abs(edge[1] - (WIDTH // 2 - 2 * 15)) < 3, edge  # the pan: 2 px a frame
