"""Quickstart: a MobileNetV2-style network from PyTorch to a Core ML package and back.

    python examples/quickstart.py [--out model.mlpackage] [--precision float16|float32]

1. build a small MobileNetV2-style classifier (random weights, nothing downloaded) in eval mode,
2. capture it with torch.export,
3. convert it with torch_coreml.export (float16 by default) and save the .mlpackage,
4. load the package back with torch_coreml.load and run it,
5. compare with eager PyTorch.

On macOS the loaded package can run on Core ML itself; elsewhere torch_coreml's reference executor runs
the saved package with its own kernels, so this script works on any machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch import nn

import torch_coreml


# --------------------------------------------------------------------------------------- model ---


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            relu6: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu6:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand → 3x3 depthwise → 1x1 linear projection, with a skip when the shape allows it."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv_bn(cin, hidden, 1),                                 # expand
            conv_bn(hidden, hidden, 3, stride, groups=hidden),       # depthwise
            conv_bn(hidden, cout, 1, relu6=False),                   # project (no activation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class TinyMobileNetV2(nn.Module):
    # (expansion, output channels, repeats, first stride), like MobileNetV2's table, but small.
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 1, 2)]

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        layers = [conv_bn(3, width, 3, stride=2)]  # stem
        cin = width
        for expand, cout, repeats, stride in self.SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(conv_bn(cin, 128, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def make_model() -> nn.Module:
    torch.manual_seed(0)
    model = TinyMobileNetV2()
    # Fresh BatchNorm layers have mean 0 / var 1 statistics, which makes them no-ops. One forward pass
    # in train mode, with momentum=None (a plain average), gives them statistics like a trained network's.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 64, 64))
    return model.eval()


# ---------------------------------------------------------------------------------------- main ---


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="where to save the .mlpackage (default: a temporary directory)")
    parser.add_argument("--precision", choices=("float16", "float32"), default="float16")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="quickstart_")) / "tiny_mobilenet.mlpackage"

    model = make_model()
    example = torch.randn(1, 3, 64, 64)

    start = time.perf_counter()
    exported = torch.export.export(model, (example,))
    export_s = time.perf_counter() - start

    start = time.perf_counter()
    try:
        converted = torch_coreml.export(exported, compute_precision=args.precision,
                                        minimum_deployment_target="iOS17", author="torch_coreml quickstart")
    except torch_coreml.UnsupportedOpsError as exc:
        print(f"conversion failed: {exc}", file=sys.stderr)
        return 1
    convert_s = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    converted.save(out)

    loaded = torch_coreml.load(out)  # what an app would ship: the package on disk, read back
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        start = time.perf_counter()
        got = loaded(x)
        run_ms = (time.perf_counter() - start) * 1e3
        expected = model(x)

    ops = Counter(op.op_type for op in loaded.program.main.block.walk() if op.op_type != "const")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    params = sum(p.numel() for p in model.parameters())
    diff = (got.double() - expected.double()).abs()
    scale = expected.double().abs().max().item()

    print(f"model:      TinyMobileNetV2, {params:,} parameters, input {list(x.shape)}")
    print(f"export:     torch.export in {export_s:.2f} s")
    print(f"conversion: torch_coreml.export ({args.precision}, iOS17) in {convert_s:.2f} s")
    print(f"package:    {out} ({size / 1024:.1f} KB)")
    print(f"MIL ops:    {sum(ops.values())} in total; most used:")
    for op, count in ops.most_common(8):
        print(f"              {count:>4}  {op}")
    print(f"executor:   {loaded.executor} (ran in {run_ms:.0f} ms)")
    print(f"output:     {list(got.shape)}, predicted class {int(got.argmax())} "
          f"(eager: {int(expected.argmax())})")
    print(f"max abs error: {diff.max().item():.3g}")
    print(f"max rel error: {diff.max().item() / scale:.3g} (relative to the largest output, {scale:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
