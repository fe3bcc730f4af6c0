"""The model zoo shared by the model tests (tests/models/) and the conversion benchmark (benchmarks/run.py).

Every model is built from a config with random weights (nothing is downloaded), in two sizes:

    model, inputs = build("bert", "small")    # CI-sized: converts in seconds
    model, inputs = build("bert", "large")    # the real architecture size, for the benchmark

Hugging Face models are wrapped to take positional tensors and return plain tensors, so both
torch.export and torch.jit.trace see the same simple signature. Weights are seeded per model so a
test failure reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

SIZES = ("small", "large")


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[str], tuple[nn.Module, tuple]]
    min_target: str = "iOS15"  # the lowest deployment target the model is converted for


class HFOutput(nn.Module):
    """Calls a Hugging Face model with positional tensors bound to `arg_names`; returns one output field."""

    def __init__(self, model: nn.Module, field: str, arg_names: tuple[str, ...] = ("input_ids",)):
        super().__init__()
        self.model, self.field, self.arg_names = model, field, arg_names

    def forward(self, *args):
        out = self.model(**dict(zip(self.arg_names, args)), return_dict=True)
        return out[self.field]


def _image(size: int, batch: int = 1) -> tuple:
    return (torch.randn(batch, 3, size, size),)


def _tokens(vocab: int, length: int) -> tuple:
    return (torch.randint(0, vocab, (1, length)),)


def _pick(size: str, small: dict, large: dict) -> dict:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return small if size == "small" else large


# --------------------------------------------------------------------------------------- vision ---


def mobilenet_v2(size):
    from transformers import MobileNetV2Config, MobileNetV2Model

    cfg = _pick(size, dict(depth_multiplier=0.35, image_size=64), dict(image_size=224))
    model = MobileNetV2Model(MobileNetV2Config(**cfg))
    return HFOutput(model, "pooler_output", ("pixel_values",)), _image(cfg["image_size"])


def resnet50(size):
    from transformers import ResNetConfig, ResNetModel

    # The large config is transformers' default: ResNet-50 (bottleneck, depths 3-4-6-3).
    cfg = _pick(size, dict(embedding_size=16, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1],
                           layer_type="bottleneck"), {})
    model = ResNetModel(ResNetConfig(**cfg))
    return HFOutput(model, "pooler_output", ("pixel_values",)), _image(64 if size == "small" else 224)


def vit(size):
    from transformers import ViTConfig, ViTModel

    cfg = _pick(size, dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                           image_size=32, patch_size=8), {})
    model = ViTModel(ViTConfig(**cfg, attn_implementation="sdpa"), add_pooling_layer=False)
    return HFOutput(model, "last_hidden_state", ("pixel_values",)), _image(model.config.image_size)


def deeplab_v3(size):
    from transformers import MobileNetV2Config, MobileNetV2ForSemanticSegmentation

    cfg = _pick(size, dict(depth_multiplier=0.35, image_size=65, num_labels=5),
                dict(image_size=513, num_labels=21))
    model = MobileNetV2ForSemanticSegmentation(MobileNetV2Config(**cfg))
    return HFOutput(model, "logits", ("pixel_values",)), _image(cfg["image_size"])


class UNet(nn.Module):
    """A small UNet: conv blocks down with max-pooling, up with nearest upsampling and skip concats."""

    def __init__(self, width: int = 8, depth: int = 2, classes: int = 2):
        super().__init__()
        chans = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([self._block(3 if i == 0 else chans[i - 1], chans[i]) for i in range(depth)])
        self.bottom = self._block(chans[depth - 1], chans[depth])
        self.up = nn.ModuleList([self._block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], classes, 1)

    @staticmethod
    def _block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for block in self.up:
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)


def unet(size):
    cfg = _pick(size, dict(width=8, depth=2), dict(width=64, depth=4))
    return UNet(**cfg), _image(32 if size == "small" else 256)


# ----------------------------------------------------------------------------------------- text ---


def bert(size):
    from transformers import BertConfig, BertModel

    cfg = _pick(size, dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128), {})
    model = BertModel(BertConfig(**cfg, attn_implementation="sdpa"), add_pooling_layer=False)
    return HFOutput(model, "last_hidden_state"), _tokens(model.config.vocab_size, 16 if size == "small" else 128)


def mobilebert(size):
    from transformers import MobileBertConfig, MobileBertModel

    cfg = _pick(size, dict(vocab_size=1000, hidden_size=64, embedding_size=32, true_hidden_size=32,
                           intra_bottleneck_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64), {})
    model = MobileBertModel(MobileBertConfig(**cfg, attn_implementation="eager"), add_pooling_layer=False)
    return HFOutput(model, "last_hidden_state"), _tokens(model.config.vocab_size, 16 if size == "small" else 128)


def distilbert(size):
    from transformers import DistilBertConfig, DistilBertModel

    cfg = _pick(size, dict(vocab_size=1000, dim=64, n_layers=2, n_heads=4, hidden_dim=128), {})
    model = DistilBertModel(DistilBertConfig(**cfg, attn_implementation="sdpa"))
    return HFOutput(model, "last_hidden_state"), _tokens(model.config.vocab_size, 16 if size == "small" else 128)


def gpt2(size):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = _pick(size, dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=64), {})
    model = GPT2LMHeadModel(GPT2Config(**cfg, use_cache=False, attn_implementation="sdpa"))
    return HFOutput(model, "logits"), _tokens(model.config.vocab_size, 16 if size == "small" else 128)


def llama(size):
    from transformers import LlamaConfig, LlamaForCausalLM

    # large: a Llama-3.2-1B-like shape with a 32k vocabulary (~1.0 B parameters).
    cfg = _pick(size, dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128),
                dict(vocab_size=32000, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                     num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=2048,
                     tie_word_embeddings=True))
    model = LlamaForCausalLM(LlamaConfig(**cfg, use_cache=False, attn_implementation="sdpa"))
    return HFOutput(model, "logits"), _tokens(cfg["vocab_size"], 16 if size == "small" else 128)


class Recurrent(nn.Module):
    """Token classifier: embedding → a stacked LSTM or GRU → linear on every step."""

    def __init__(self, cell: str, vocab: int, hidden: int, layers: int, classes: int = 8):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = getattr(nn, cell)(hidden, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return self.head(out)


def _recurrent(cell, size):
    cfg = _pick(size, dict(vocab=100, hidden=32, layers=2), dict(vocab=10000, hidden=512, layers=2))
    return Recurrent(cell, **cfg), _tokens(cfg["vocab"], 12 if size == "small" else 64)


def lstm(size):
    return _recurrent("LSTM", size)


def gru(size):
    return _recurrent("GRU", size)


# -------------------------------------------------------------------------------------- registry ---

MODELS: dict[str, Entry] = {e.name: e for e in (
    Entry("mobilenet_v2", mobilenet_v2),
    Entry("resnet50", resnet50),
    Entry("vit", vit),
    Entry("deeplab_v3", deeplab_v3),
    Entry("unet", unet),
    Entry("bert", bert),
    Entry("mobilebert", mobilebert),
    Entry("distilbert", distilbert),
    Entry("gpt2", gpt2),
    Entry("llama", llama),
    Entry("lstm", lstm),
    Entry("gru", gru),
)}


def build(name: str, size: str = "small", seed: int = 0) -> tuple[nn.Module, tuple]:
    """The eval-mode model and its example inputs (a tuple of tensors)."""
    torch.manual_seed(seed)
    model, inputs = MODELS[name].build(size)
    _calibrate_batchnorm(model, inputs)
    return model.eval(), inputs


@torch.no_grad()
def _calibrate_batchnorm(model: nn.Module, inputs: tuple, batches: int = 2) -> None:
    """Set BatchNorm running statistics from random data, as training would.

    With freshly initialised statistics (mean 0, var 1) and small random weights, activations shrink
    layer after layer: MobileNetV2's output would be ~1e-24, and any converter would "match" it. Real
    statistics renormalise every layer, so outputs stay O(1) and the comparison means something."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    for _ in range(batches):
        # A batch of 4: layers that pool to 1x1 (DeepLab's image pooling) need > 1 value per channel.
        model(*[torch.randn(4, *x.shape[1:]) for x in inputs])
    model.eval()
