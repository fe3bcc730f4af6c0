"""Small torch models that cover common layers, for end-to-end runtime tests.

Each is tiny so that converting it (with coremltools, in the tests) takes well under a second.
BatchNorm layers get non-trivial running statistics so that folding them is actually exercised.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _randomize_batchnorm(module: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    return module


class CNN(nn.Module):
    """conv → batch norm → relu → max pool, a grouped strided conv, avg pool, flatten, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 2 * 2, 10)
        _randomize_batchnorm(self)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(20, 64), nn.Linear(64, 32), nn.Linear(32, 5)

    def forward(self, x):
        return self.l3(torch.tanh(self.l2(F.gelu(self.l1(x)))))


class Attention(nn.Module):
    """Pre-norm multi-head self-attention written out with matmul and softmax, plus a residual."""

    def __init__(self, d: int = 32, heads: int = 4):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.heads = heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln(x)).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        return x + self.out((att @ v).transpose(1, 2).reshape(b, t, d))


class SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class LSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


class Upsample(nn.Module):
    def forward(self, x):
        nearest = F.interpolate(x, scale_factor=2, mode="nearest")
        return nearest + F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Embed(nn.Module):
    """Embedding lookup (gather along axis 0) and torch.gather along axis 1."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)

    def forward(self, ids):
        e = self.emb(ids)
        picked = torch.gather(e, 1, (ids[:, :2, None] % 6).long().expand(-1, -1, 16))
        return e.sum(1) + picked.mean(1)


class Reductions(nn.Module):
    def forward(self, x):
        return torch.cat([x.sum(1), x.mean(1), x.amax(1), x.amin(1), x.norm(dim=1), torch.logsumexp(x, 1)], 1)


class ArgMax(nn.Module):
    def forward(self, x):
        return torch.argmax(x, dim=1).to(torch.int32)


class Softmaxes(nn.Module):
    def forward(self, x):
        return torch.softmax(x, -1), torch.log_softmax(x, 1)


class Shapes(nn.Module):
    """split, permute, transpose, concat, reshape, strided slice, stack, flatten, (un)squeeze."""

    def forward(self, x):
        a, b = torch.split(x, [2, 4], dim=1)
        y = torch.cat([b.permute(0, 2, 1, 3), a.transpose(1, 2)], dim=2)
        y = y.reshape(2, -1, 4)[:, 1:-1:2]
        return torch.stack([y, y * 2], 1).flatten(2).unsqueeze(0).squeeze(0)


class Elementwise(nn.Module):
    def forward(self, x):
        y = torch.where(x > 0, torch.sqrt(x.abs() + 1), torch.exp(x)) - torch.clamp(x, -0.5, 0.5)
        return (torch.sigmoid(y) * torch.sin(x) + F.silu(x) / (1 + x * x) + F.leaky_relu(x, 0.1)
                + torch.pow(x.abs(), 1.5))


class ConvTranspose(nn.Module):
    """pad, depthwise conv, hardtanh, transposed conv, conv1d, adaptive average pool."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.up = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
        self.c1 = nn.Conv1d(2, 3, 3)

    def forward(self, x):
        y = self.up(F.hardtanh(self.dw(F.pad(x, (1, 1, 1, 1)))))
        return self.c1(y.mean(2)), F.adaptive_avg_pool2d(y, 1)


class Misc(nn.Module):
    """topk, cumsum, einsum, max over a dim."""

    def forward(self, x):
        values, _ = torch.topk(x, 3, dim=-1)
        return torch.cumsum(x, dim=1), values, torch.einsum("bij,bkj->bik", x, x), x.max(dim=-1).values


class Accumulator(nn.Module):
    """A stateful module: adds each input to a buffer that Core ML keeps as a state."""

    def __init__(self):
        super().__init__()
        self.register_buffer("total", torch.zeros(2, 3, dtype=torch.float16))

    def forward(self, x):
        self.total.add_(x)
        return self.total * 2
