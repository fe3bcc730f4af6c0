"""torch.compile(model, backend="coreml"): Core ML where it can, PyTorch where it cannot.

    python examples/compile_dropin.py [--cache-dir DIR]

1. build a small conv classifier whose middle calls a custom op (`demo::soft_clip`) that has no
   Core ML lowering,
2. compile it with backend="coreml": the backend partitions the graph, converts the supported regions
   to Core ML packages and leaves the custom op to PyTorch,
3. print the support overview (delegated fraction, partitions, what fell back and why),
4. compile again after `torch._dynamo.reset()`: the packages now come from the on-disk compile cache,
   so the warm compile skips conversion (the very first compile of a process also pays one-time
   set-up, so the cold time is measured on a second, empty cache),
5. compare with eager PyTorch.

No torch_coreml import is needed for step 2 (the backend is an entry point); we import it only to read
the report.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn


@torch.library.custom_op("demo::soft_clip", mutates_args=())
def soft_clip(x: torch.Tensor) -> torch.Tensor:
    return x / (1 + x.abs())


@soft_clip.register_fake
def _(x):
    return torch.empty_like(x)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(soft_clip(self.features(x)))


def compile_and_run(model, x, cache_dir):
    torch._dynamo.reset()
    start = time.perf_counter()
    compiled = torch.compile(model, backend="coreml",
                             options={"compute_precision": "float32", "cache_dir": cache_dir})
    with torch.no_grad():
        y = compiled(x)  # the first call compiles
    return y, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="compile cache (default: a fresh temporary one)")
    args = parser.parse_args()
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="torch_coreml_cache_")

    torch.manual_seed(0)
    model = Classifier().eval()
    x = torch.randn(2, 3, 32, 32)
    _, first = compile_and_run(model, x, tempfile.mkdtemp(prefix="torch_coreml_cache_"))
    y, cold = compile_and_run(model, x, cache_dir)

    import torch_coreml.backend

    report = torch_coreml.backend.last_report()
    converting = sum(p.seconds for p in report.coreml_partitions)
    print(f"delegated:  {report.delegated_nodes}/{report.call_nodes} call nodes "
          f"({100 * report.delegated_fraction:.0f}%)")
    print(f"partitions: {len(report.coreml_partitions)} Core ML")
    for op, (count, reasons) in report.fallback_ops.items():
        print(f"  in PyTorch: {op} x{count} ({'; '.join(reasons)})")

    y_warm, warm = compile_and_run(model, x, cache_dir)
    warm_report = torch_coreml.backend.last_report()
    loading = sum(p.seconds for p in warm_report.coreml_partitions)
    print(f"compile:    cold {cold:.2f} s, warm {warm:.2f} s ({warm_report.cache_hits} partition(s) from the "
          f"cache in {cache_dir}); first compile of the process {first:.2f} s")
    print(f"            converting the partitions {converting:.2f} s, loading them from the cache {loading:.2f} s")

    with torch.no_grad():
        expected = model(x)
    print(f"max abs error: {(y - expected).abs().max().item():.3g} (warm: {(y_warm - expected).abs().max().item():.3g})")


if __name__ == "__main__":
    main()
