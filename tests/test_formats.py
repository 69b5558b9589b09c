"""Videos out as studios use them: ProRes 4444 with the source's alpha, VP9
webm, HEVC, --crf, numbered 16-bit PNG sequences; and a format that cannot
write what is asked refused before any work starts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import SHALLOW_ARGS, decoded_frames, sample, save
from PIL import Image

from framestyle.cli import main
from framestyle.host import PluginHost
from framestyle.media import encodings
from framestyle.media.encodings import ffmpeg_exe

CHEAP = ["--size", "48", "--iterations", "4", "--first-iterations", "6", "--min-iterations", "2", *SHALLOW_ARGS]
WIDTH, HEIGHT, FRAMES = 48, 32, 16


@pytest.fixture(scope="module")
def alpha_clip(tmp_path_factory) -> Path:
    """A ProRes 4444 clip whose alpha is a soft disc moving 3 px a frame over
    a half-transparent ground (each frame's alpha another), with sound."""
    path = tmp_path_factory.mktemp("alpha") / "matte.mov"
    alpha = "if(lt(hypot(X-8-3*N,Y-16),10),255,clip(60+2*X,0,255))"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=12:duration={FRAMES / 12}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={FRAMES / 12}",
                    "-filter_complex", f"[0:v]format=rgba,geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='{alpha}'[v]",
                    "-map", "[v]", "-map", "1:a", "-c:v", "prores_ks", "-profile:v", "4444",
                    "-pix_fmt", "yuva444p10le", "-c:a", "pcm_s16le", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    return save(tmp_path_factory.mktemp("style") / "style.png", sample("swirls.jpg", 48))


def alpha_of(path: Path) -> np.ndarray:
    """Every frame's alpha, as ffmpeg decodes it (16 bits)."""
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-vf", "alphaextract",
                          "-f", "rawvideo", "-pix_fmt", "gray16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, "<u2").reshape(-1, HEIGHT, WIDTH)


def streams(path: Path) -> str:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def test_prores_4444_keeps_the_sources_alpha_frame_by_frame(alpha_clip, style, tmp_path, weights_cache):
    out = tmp_path / "out.mov"
    assert main(["run", str(alpha_clip), "--style", str(style), "-o", str(out), *CHEAP]) == 0
    info = streams(out)
    assert re.search(r"Video: prores \(4444\).*yuva444p", info) and "Audio: pcm_s16le" in info
    source, written = alpha_of(alpha_clip), alpha_of(out)
    assert written.shape == source.shape == (FRAMES, HEIGHT, WIDTH)
    assert np.array_equal(written, source)  # each frame's own matte, to the bit
    assert len({frame.tobytes() for frame in source}) == FRAMES  # (which moves: a frame off would show)
    stylised, plain = decoded_frames(out), decoded_frames(alpha_clip)
    assert min(np.abs(a.astype(int) - b).mean() for a, b in zip(stylised, plain, strict=True)) > 10


def test_a_split_prores_video_keeps_each_chunks_alpha(alpha_clip, style, tmp_path, weights_cache, monkeypatch,
                                                     capsys):
    """Two segments encoded as chunks and joined: each chunk reads the alpha of its own frames."""
    from framestyle.engine.planning import segments as splitting

    monkeypatch.setattr(splitting, "CHUNK", 4)
    out = tmp_path / "out.mov"
    assert main(["run", str(alpha_clip), "--style", str(style), "-o", str(out), "--batch-size", "2", "-v",
                 *CHEAP]) == 0
    assert "2 segments from frames 1, 9" in capsys.readouterr().err
    assert np.array_equal(alpha_of(out), alpha_of(alpha_clip))


def test_an_rgba_png_sequence_keeps_its_alpha_in_prores(style, tmp_path, weights_cache):
    rng = np.random.default_rng(3)
    mattes = [rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8) for _ in range(4)]
    picture = sample("chelsea.jpg", 64)[:HEIGHT, :WIDTH]
    from PIL import Image

    (tmp_path / "shot").mkdir()
    for n, matte in enumerate(mattes, start=7):
        Image.fromarray(np.dstack([picture, matte])).save(tmp_path / "shot" / f"f_{n:04d}.png")
    out = tmp_path / "out.mov"
    assert main(["run", str(tmp_path / "shot" / "f_####.png"), "--style", str(style), "-o", str(out), *CHEAP]) == 0
    written = alpha_of(out)
    assert written.shape[0] == 4
    assert np.array_equal(np.rint(written / 257).astype(np.uint8), np.stack(mattes))  # 8-bit mattes, exactly


def test_vp9_webm_with_alpha_and_hevc_with_crf(alpha_clip, style, tmp_path, weights_cache):
    webm = tmp_path / "out.webm"
    assert main(["run", str(alpha_clip), "--style", str(style), "-o", str(webm), *CHEAP]) == 0
    info = streams(webm)
    assert "Video: vp9" in info and "alpha_mode" in info and "Audio: opus" in info
    webm_alpha = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-c:v", "libvpx-vp9", "-i", str(webm),
                                 "-vf", "alphaextract", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                                capture_output=True, check=True).stdout
    matte = np.frombuffer(webm_alpha, np.uint8).reshape(-1, HEIGHT, WIDTH).astype(int)
    assert np.abs(matte - np.rint(alpha_of(alpha_clip) / 257)).mean() < 3  # VP9 codes alpha lossily
    sizes = {}
    for crf in (4, 44):
        out = tmp_path / f"crf{crf}.mp4"
        assert main(["run", str(alpha_clip), "--style", str(style), "-o", str(out), "--writer", "hevc",
                     "--crf", str(crf), *CHEAP]) == 0
        assert re.search(r"Video: hevc .*hvc1", streams(out)) and len(decoded_frames(out)) == FRAMES
        sizes[crf] = len(subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(out), "-map", "0:v",
                                         "-c", "copy", "-f", "hevc", "-"], capture_output=True, check=True).stdout)
    assert sizes[4] > 2 * sizes[44]  # --crf reaches the encoder


@pytest.mark.parametrize("args, says", [
    (["-o", "{tmp}/out.mov", "--crf", "20"], "--crf: the prores writer"),
    (["-o", "{tmp}/out.mp4", "--crf", "52"], "--crf 52: the mp4 writer takes 0 (best) to 51"),
    (["-o", "{tmp}/out.webm"], "needs ffmpeg's libvpx-vp9 encoder"),
])
def test_what_cannot_be_written_is_refused_before_any_work(alpha_clip, style, tmp_path, args, says, capsys,
                                                           monkeypatch):
    monkeypatch.setattr(encodings, "ffmpeg_encoders", lambda: frozenset({"libx264", "prores_ks"}))
    code = main(["run", str(alpha_clip), "--style", str(style), *[a.format(tmp=tmp_path) for a in args], *CHEAP])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing started


@pytest.fixture(scope="module")
def numbered_shot(tmp_path_factory) -> Path:
    """Six frames of a slow pan over a photo, numbered from 1001 as VFX tools number them."""
    folder = tmp_path_factory.mktemp("shot")
    photo = sample("chelsea.jpg", 80)
    for t in range(6):
        save(folder / f"plate.{1001 + t}.png", np.ascontiguousarray(photo[4:36, 8 + 2 * t: 56 + 2 * t]))
    return folder / "plate.####.png"


def deep(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgr is not None and bgr.dtype == np.uint16, path
    return bgr[..., ::-1].astype(np.int64)


def test_a_16_bit_png_sequence_numbered_as_its_source(numbered_shot, style, tmp_path, weights):
    import framestyle

    options = dict(size=48, iterations=4, first_iterations=6, min_iterations=2, weights=weights)
    out = tmp_path / "deep" / "styled.%04d.png"
    assert framestyle.run(numbered_shot, style, out, bit_depth=16, **options).exit_code == 0
    written = sorted(p.name for p in out.parent.glob("styled.*.png"))
    assert written == [f"styled.{n}.png" for n in range(1001, 1007)]  # the source's own numbers
    frames = [deep(out.parent / name) for name in written]
    assert all(frame.shape == (32, 48, 3) for frame in frames)
    assert min(np.mean(frame % 257 != 0) for frame in frames) > 0.5  # finer steps than 8 bits give
    shallow = tmp_path / "shallow" / "styled.%04d.png"
    assert framestyle.run(numbered_shot, style, shallow, **options).exit_code == 0
    first = np.asarray(Image.open(shallow.parent / "styled.1001.png"), dtype=np.int64)
    assert np.abs(np.rint(frames[0] / 257) - first).max() <= 1  # the same first frame, 256 times finer

    # Resumed after frame 3: the kept 16-bit frames read back at their depth, to the same bytes.
    class StopAfter:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            if event.index == 2 and not event.reused:
                raise KeyboardInterrupt

    resumed = tmp_path / "resumed" / "styled.%04d.png"
    host = PluginHost(autoload=False)
    host.register(StopAfter(), "stop")
    assert framestyle.run(numbered_shot, style, resumed, bit_depth=16, host=host, **options).interrupted
    assert framestyle.run(numbered_shot, style, resumed, bit_depth=16, **options).exit_code == 0
    assert all((resumed.parent / name).read_bytes() == (out.parent / name).read_bytes() for name in written)
    # A shorter rerun leaves no frame of the longer one behind.
    assert framestyle.run(numbered_shot, style, out, bit_depth=16, end="4", overwrite=True, **options).exit_code == 0
    assert sorted(p.name for p in out.parent.glob("styled.*.png")) == written[:4]


def test_numbered_outputs_never_write_over_frames_framestyle_did_not_make(numbered_shot, style, tmp_path, capsys):
    before = {p: p.read_bytes() for p in numbered_shot.parent.glob("plate.*.png")}
    code = main(["run", str(numbered_shot), "--style", str(style), "-o",
                 str(numbered_shot.with_name("plate.%04d.png")), *CHEAP])
    assert code == 1 and "framestyle did not make" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in numbered_shot.parent.glob("plate.*.png")} == before


@pytest.mark.parametrize("args, says", [
    (["-o", "{tmp}/out.mp4", "--bit-depth", "16"], "--bit-depth 16: the mp4 writer writes 8-bit video"),
    (["-o", "{tmp}/%04d.jpg", "--bit-depth", "16"], "--bit-depth 16: .jpg files have 8 bits a channel"),
])
def test_16_bits_where_the_format_has_8_is_refused_before_any_work(numbered_shot, style, tmp_path, args, says,
                                                                    capsys):
    code = main(["run", str(numbered_shot), "--style", str(style), *[a.format(tmp=tmp_path) for a in args], *CHEAP])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
