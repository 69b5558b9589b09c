"""Which fp32 rounding this machine's kernels give: a digest of each kind of
operation the network runs (a 3x3 convolution, ReLU and pooling after it,
a Gram matrix, a plain matrix product), on fixed inputs, one thread.

The two kinds of 2-core machine this project runs on round differently: the
AVX512 kind's convolutions (oneDNN) are not the AVX2 kind's. A test whose
threshold passes on one may fail on the other, so ``dev.py test --cpu-kind
avx2`` runs the suite on the AVX512 kind with the kernels held to AVX2
(``CPU_KIND_ENV`` in dev.py). This prints the digests with and without that
cap; run it on the AVX2 kind to see whether the cap reproduces its rounding:

    .venv/bin/python benchmarks/rounding.py

Measured with torch 2.14.1 (one thread), the AVX512-BF16 kind:

    as it is             conv=cbd977a4 gram=0dd96205 relu_pool=a1a815fa mm=5703e866 rgb_conv=9e5f4f3b
    held to AVX2         conv=6cdef0c0 gram=0dd96205 relu_pool=fd121a3e mm=5703e866 rgb_conv=9e5f4f3b

Only oneDNN's cap (``ONEDNN_MAX_CPU_ISA``) changes anything; ATen's
(``ATEN_CPU_CAPABILITY``) and MKL's leave these digests as they are.

The AVX2 kind (no AVX512-BF16), measured the same way: both lines are the
bf16 kind's "held to AVX2" line, digest for digest. So ``--cpu-kind avx2``
reproduces that kind's fp32 rounding of these operations exactly:

    as it is             conv=6cdef0c0 gram=0dd96205 relu_pool=fd121a3e mm=5703e866 rgb_conv=9e5f4f3b
    held to AVX2         conv=6cdef0c0 gram=0dd96205 relu_pool=fd121a3e mm=5703e866 rgb_conv=9e5f4f3b
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def digests() -> str:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    torch.set_num_threads(1)
    features = torch.rand(1, 64, 48, 64)
    convolved = F.conv2d(features, torch.randn(64, 64, 3, 3) * 0.05, padding=1)
    flat = convolved.flatten(1)
    results = {
        "conv": convolved,
        "gram": flat @ flat.T,
        "relu_pool": F.max_pool2d(F.relu(convolved), 2),
        "mm": torch.randn(256, 512) @ torch.randn(512, 300),
        "rgb_conv": F.conv2d(torch.rand(1, 3, 64, 64), torch.randn(64, 3, 3, 3) * 0.1, padding=1),
    }
    return " ".join(f"{name}={hashlib.sha256(value.numpy().tobytes()).hexdigest()[:8]}"
                    for name, value in results.items())


def main() -> None:
    if len(sys.argv) > 1:
        print(digests())
        return
    from dev import CPU_KIND_ENV

    for label, extra in (("as it is", {}), ("held to AVX2", CPU_KIND_ENV["avx2"])):
        done = subprocess.run([sys.executable, __file__, "--digests"], env={**os.environ, **extra},
                              capture_output=True, text=True, check=True)
        print(f"{label:20} {done.stdout.strip()}")


if __name__ == "__main__":
    main()
