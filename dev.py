#!/usr/bin/env python3
"""Set up a local virtual environment (once) and run framestyle's two main jobs.

    python3 dev.py samples        stylise samples/photos/ and samples/video/ into out/samples/
    python3 dev.py test [ARGS]    lint (ruff) and type-check (mypy), then run the test
                                  suite (ARGS go to pytest); when it runs the whole suite,
                                  then a sample of the mutation harness (tests/mutations.py)
    python3 dev.py test --cpu-kind avx2 [ARGS]
                                  the same, as on the AVX2 kind of machine: fp32, and
                                  oneDNN's kernels held to AVX2 (benchmarks/rounding.py)
    python3 dev.py mutations [WORDS]  every break of the mutation harness (or those named)

Only the standard library is used here, so this works on a fresh machine with
Python 3.11+ and pip. The environment lives in .venv/ and is reinstalled only
when pyproject.toml or the pins below change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# Pinned apart from pyproject.toml so that an install with no pip constraints
# takes these exact builds (a bare "torch" could pull a far larger one).
PINS = ["torch==2.14.1", "torchvision==0.29.1"]
STAMP = VENV / ".framestyle-installed"
# How a machine with AVX512-BF16 runs as one without: auto precision picks
# fp32, and the convolutions round with AVX2's kernels (benchmarks/rounding.py).
# torch.compile's kernels go to a cache of their own: inductor's does not key
# them by ATEN_CPU_CAPABILITY, and loading one built under the other crashes.
CPU_KIND_ENV = {"avx2": {"FRAMESTYLE_NO_NATIVE_BF16": "1", "ONEDNN_MAX_CPU_ISA": "AVX2",
                         "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                         "TORCHINDUCTOR_CACHE_DIR": str(Path(tempfile.gettempdir()) / "torchinductor-avx2")}}


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def plugin_packages() -> list[Path]:
    """The example plugin packages, installed too so their tests and the
    end-to-end checks run against real entry points."""
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def fingerprint() -> str:
    digest = hashlib.sha256(" ".join(PINS).encode())
    for project in [ROOT, *plugin_packages()]:
        digest.update((project / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def ensure_environment() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"dev.py: creating {VENV}", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    if not STAMP.exists() or STAMP.read_text() != fingerprint():
        print("dev.py: installing framestyle and its dependencies (first run takes a few minutes)",
              file=sys.stderr)
        # pip byte-compiles its 11,000 files (torch's mostly) in one process, a
        # minute on 2 cores; compileall does it on every core. Compiled they must
        # be: where PYTHONDONTWRITEBYTECODE is set (CI) nothing is cached later,
        # and every process the tests start would compile torch again (~6 s).
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "-q"]
        # The five editable projects build with the environment's own setuptools:
        # an isolated build environment each cost ~25 s of the install.
        subprocess.run([*pip, *build_requirements()], check=True)
        # One pip call: one resolution, and the plugins' "framestyle" is the checkout.
        editable = [f"{ROOT}[test]", *map(str, plugin_packages())]
        subprocess.run([*pip, "--no-build-isolation", *PINS, *(arg for path in editable for arg in ("-e", path))],
                       check=True)
        subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", "-x", UNIMPORTED, str(VENV)],
                       stdout=subprocess.DEVNULL)
        STAMP.write_text(fingerprint())
    return python


# Left uncompiled (a sixth of the files): Ray's libraries that framestyle never
# imports (it uses Ray Core only), and pip, which has done its work by then.
UNIMPORTED = r"/site-packages/(ray/(rllib|data|train|tune|llm|serve)|pip)/"


def build_requirements() -> list[str]:
    """What pyproject.toml's [build-system] asks for (the plugins ask the same)."""
    import tomllib

    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"])


def ensure_browser() -> None:
    """The HTML report is tested in a real headless Chromium. On a Debian
    machine where we are root (CI), install Debian's chromium and
    chromium-driver once; elsewhere that test is skipped, saying why."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.environ.get("FRAMESTYLE_NO_BROWSER") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("dev.py: installing Debian's chromium and chromium-driver for the report test "
          "(FRAMESTYLE_NO_BROWSER=1 skips this)", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    if subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], **quiet).returncode:
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], **quiet)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("samples", "test", "mutations"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "samples":
        return samples(ensure_environment(), argv[1:])
    if argv[0] == "mutations":
        return run([str(ensure_environment()), "tests/mutations.py", *argv[1:]])
    if argv[1:2] == ["--cpu-kind"] and len(argv) > 2:
        if argv[2] not in CPU_KIND_ENV:
            print(f"dev.py: --cpu-kind is one of {', '.join(CPU_KIND_ENV)}", file=sys.stderr)
            return 2
        os.environ.update(CPU_KIND_ENV[argv[2]])  # the tests' own processes inherit it
        argv = [argv[0], *argv[3:]]
    # Side by side, as each leaves a core mostly idle: Debian's chromium
    # installs while pip does, and mypy (~50 s) checks while pytest runs.
    browser = threading.Thread(target=ensure_browser)
    browser.start()
    python = ensure_environment()
    browser.join()
    linted = run([str(python), "-m", "ruff", "check", "--quiet", "."])
    print("dev.py: -m mypy (its report follows the tests')", file=sys.stderr)
    typing = subprocess.Popen([str(python), "-m", "mypy"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    tested = run([str(python), "-m", "pytest", *parallel(argv[1:]), *argv[1:]])
    report, _ = typing.communicate()
    print("dev.py: mypy: " + report.strip(), file=sys.stderr)
    if tested or not whole_suite(argv[1:]):
        return tested or (1 if linted or typing.returncode else 0)
    # The breaks of the files the last commit changed, and a few more that rotate by day (all: dev.py
    # mutations). The suite has just passed on this tree: that is each break's run on the clean code.
    mutated = run([str(python), "tests/mutations.py", "--sample", str(MUTATION_SAMPLE), "--proved-clean"])
    return 1 if linted or typing.returncode or mutated else 0


# Breaks of the files the last commit changed, and as many others, that CI
# tries after the suite: about half a minute on the slower CPU kind.
MUTATION_SAMPLE = 1


def whole_suite(args: list[str]) -> bool:
    """Whether the pytest arguments run every test: no -k, -m or test paths among them."""
    selecting = ("-k", "-m", "--lf", "--last-failed", "--deselect")
    return not any(arg.startswith(selecting) or "::" in arg or not arg.startswith("-") and (ROOT / arg).exists()
                   for arg in args)


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist workers, one more than the cores up to 4 (tests/conftest.py
    shares the cores out among them), unless the arguments say otherwise. A
    worker often waits: on the processes and ffmpeg runs its tests start, on
    Ray, on imports. On the 2-core AVX2 machine the suite took 299 s in two
    workers against 414 s in one process, and later 375 s in three against
    about 450 s in two."""
    cores = os.cpu_count() or 1
    if cores < 2 or any(arg.startswith(("-n", "--numprocesses", "--dist")) or "no:xdist" in arg for arg in args):
        return []
    return ["-n", str(min(cores + 1, 4)), "--dist", "loadgroup"]


# Seconds each step of the samples takes on the 2-core machines, with and
# without native bf16 (docs/performance/speed.md: the samples). Measured on
# the AVX2 kind: photos 48 s, video 184 s; with bf16, the photos 37 s
# (measured) and the video by bf16's usual 0.6x (not yet measured there).
SAMPLE_SECONDS = {"photos": (37, 50), "video": (110, 185)}
# The sample video as the docs recommend a video on a CPU: 192 px, the
# default iterations (a warm frame stops once settled), its sound kept.
VIDEO_SIZE = 192


def samples(python: Path, extra: list[str]) -> int:
    """The four sample photos, then the sample video with its audio, saying
    before each what it does and about how long it takes on this kind of CPU,
    and at the end where to look."""
    framestyle = [str(python), "-m", "framestyle", "run", "--style", "samples/styles/swirls.jpg", "--report"]
    column = 0 if native_bf16() else 1
    say(f"1/2: the 4 photos in samples/photos at 256 px, 50 iterations each "
        f"(about {SAMPLE_SECONDS['photos'][column]} s on this CPU)")
    photos = run([*framestyle, "samples/photos", "-o", "out/samples/photos",
                  "--size", "256", "--iterations", "50", *extra])
    say(f"2/2: samples/video/bunny.mp4 at {VIDEO_SIZE} px with the default settings, each frame warm-started "
        f"from the last, with its sound (about {SAMPLE_SECONDS['video'][column]} s on this CPU)")
    video = run([*framestyle, "samples/video/bunny.mp4", "-o", "out/samples/bunny.mp4", "--size", str(VIDEO_SIZE),
                 *extra])
    if not photos and not video:
        say("done. Look at out/samples/photos/ and out/samples/bunny.mp4, and at their reports "
            "(open in a browser): out/samples/photos/framestyle-report.html and "
            "out/samples/bunny.mp4.framestyle-report.html")
    return photos or video


def native_bf16() -> bool:
    """Whether this CPU has AVX512-BF16 or AMX, as framestyle's auto precision
    decides (Linux; FRAMESTYLE_NO_NATIVE_BF16 treats it as one without)."""
    if os.environ.get("FRAMESTYLE_NO_NATIVE_BF16", "") not in ("", "0"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def say(text: str) -> None:
    print("dev.py: " + text, file=sys.stderr, flush=True)


def run(command: list[str]) -> int:
    print("dev.py: " + " ".join(command[1:]), file=sys.stderr)
    return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
