"""StyleGAN2 networks in pure PyTorch (no custom CUDA ops), class-conditional, and DiffAugment.

Follows Karras et al., *Analyzing and Improving the Image Quality of StyleGAN* (2020) and the
layout of NVIDIA's stylegan2-ada-pytorch: equalised learning rate everywhere, a mapping network
(lr multiplier 0.01) that also embeds the class label, modulated/demodulated 3×3 convolutions
with per-pixel noise inputs, a skip-architecture generator (every resolution adds its RGB
output to the upsampled image) and a residual discriminator with minibatch-stddev and a
projection (normalised class-embedding) output. Up/downsampling uses the [1, 3, 3, 1] FIR
filter: bilinear 2× upsampling is that filter, downsampling is an explicit depthwise blur.

Eager PyTorch pays a fixed cost per op (a kernel launch on a GPU), and at 32–64 px that cost,
not arithmetic, sets the step time; so the layers are written with as few ops as the maths
allows: the leaky-ReLU gain √2 is folded into weights, biases and demodulation coefficients
(lrelu(x)·√2 = lrelu(√2·x)), bias-and-demodulation is one ``addcmul``, noise another, and the
fp16 activation clamp is applied only to float16 tensors (as stylegan2-ada does).

:func:`diff_augment` is DiffAugment (Zhao et al., *Differentiable Augmentation for
Data-Efficient GAN Training*, 2020): colour, translation and cutout applied to every image the
discriminator sees, real or fake, and differentiable so the generator learns through it.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AUGMENTATIONS",
    "Discriminator",
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "channels_at",
    "diff_augment",
]

_SQRT2 = math.sqrt(2.0)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: ``min(channel_base // resolution, channel_max)``."""
    return max(1, min(channel_base // resolution, channel_max))


def _clamp(x: torch.Tensor, clamp: float | None) -> torch.Tensor:
    # Only float16 can overflow; bfloat16 and float32 activations are left alone.
    return x.clamp(-clamp, clamp) if clamp is not None and x.dtype == torch.float16 else x


def _normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class _Blur(nn.Module):
    """Depthwise [1, 3, 3, 1]² low-pass filter, optionally followed by stride-2 subsampling."""

    def __init__(self) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor, pad: int, stride: int) -> torch.Tensor:
        channels = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(channels, 1, 4, 4)
        return F.conv2d(x, kernel, stride=stride, padding=pad, groups=channels)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (weights scaled at run time).

    ``out_gain`` scales the output (folded into the weight and bias scaling: no extra op).
    """

    def __init__(
        self, in_features: int, out_features: int, bias_init: float = 0.0,
        lr_multiplier: float = 1.0, activation: bool = False, out_gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        gain = out_gain * (_SQRT2 if activation else 1.0)  # lrelu(x)·√2 = lrelu(√2·x)
        self.weight_gain = gain * lr_multiplier / math.sqrt(in_features)
        self.bias_gain = gain * lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(x.dtype) * self.weight_gain
        bias = self.bias.to(x.dtype)
        x = F.linear(x, weight, bias if self.bias_gain == 1.0 else bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) if self.activation else x


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate; ``down`` blurs and subsamples by 2 first."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
        activation: bool = True, down: bool = False, clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.gain = _SQRT2 if activation else 1.0  # lrelu(x)·√2 = lrelu(√2·x)
        self.weight_gain = self.gain / math.sqrt(in_channels * kernel_size**2)
        self.kernel_size, self.activation, self.down, self.clamp = (
            kernel_size, activation, down, clamp,
        )
        self.blur = _Blur() if down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.weight_gain).to(x.dtype)
        bias = None
        if self.bias is not None:
            bias = self.bias.to(x.dtype)
            bias = bias * self.gain if self.gain != 1.0 else bias
        if self.blur is not None:  # as stylegan2-ada: blur with padding, then strided conv
            k = self.kernel_size
            x = self.blur(x, pad=(4 - 2 + k - 1) // 2, stride=1 if k > 1 else 2)
            x = F.conv2d(x, weight, bias, stride=2 if k > 1 else 1)
        else:
            x = F.conv2d(x, weight, bias, padding=self.kernel_size // 2)
        return _clamp(F.leaky_relu(x, 0.2), self.clamp) if self.activation else x


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor | None = None,
    demodulate: bool = True, gain: float = 1.0,
) -> torch.Tensor:
    """Per-sample modulated (and demodulated) convolution plus bias, times ``gain``.

    Computed without grouped convs: scaling the input by the styles and the output by the
    demodulation coefficients is the same as convolving with per-sample weights, and batches
    as one ordinary convolution (stylegan2-ada's ``fused_modconv=False`` path, used there for
    training). Demodulation makes the result independent of the scale of ``styles``.
    """
    n, dtype = x.shape[0], x.dtype
    if demodulate and dtype == torch.float16:  # keep half-precision intermediates in range
        weight = weight / weight.flatten(1).abs().amax(dim=1).view(-1, 1, 1, 1)
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    x = x * styles.to(dtype).view(n, -1, 1, 1)
    padding = weight.shape[-1] // 2
    if not demodulate:
        return F.conv2d(x, (weight * gain if gain != 1.0 else weight).to(dtype),
                        None if bias is None else bias.to(dtype) * gain, padding=padding)
    x = F.conv2d(x, weight.to(dtype), padding=padding)
    # Σ_{i,k} (w_oik s_i)² = Σ_i s_i² Σ_k w_oik²: N×out without materialising N weights;
    # gain² folded in: gain / sqrt(p + ε) = rsqrt(p / gain² + ε / gain²).
    power = torch.addmm(styles.new_full((1, 1), 1e-8 / gain**2, dtype=torch.float32),
                        styles.float().square(), weight.float().square().sum(dim=(2, 3)).t(),
                        alpha=1.0 / gain**2)
    coefficients = power.rsqrt().to(dtype).view(n, -1, 1, 1)
    if bias is None:
        return x * coefficients
    return torch.addcmul(bias.to(dtype).view(1, -1, 1, 1) * gain, x, coefficients)


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv (optionally after 2× upsampling), noise input, bias, leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool,
        clamp: float | None,
    ) -> None:
        super().__init__()
        # The conv is demodulated, so the styles need no 1/sqrt(fan-in) gain.
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.clamp, self.resolution = up, clamp, resolution

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: str, gen: torch.Generator | None
    ) -> torch.Tensor:
        if self.up:
            x = _upsample2x(x)
        # lrelu(conv·d + noise·s + b)·√2, with the √2 folded into d, s and b.
        x = modulated_conv2d(x, self.weight, self.affine(w), self.bias, gain=_SQRT2)
        if noise != "none":
            if noise == "const":
                sample = self.noise_const.to(x.dtype)
            elif gen is None:  # training: device RNG (seeded by fit)
                sample = torch.randn((x.shape[0], 1, self.resolution, self.resolution),
                                     device=x.device, dtype=x.dtype)
            else:  # sampling: drawn on the CPU so a seed gives the same images on any device
                sample = torch.randn((x.shape[0], 1, self.resolution, self.resolution),
                                     generator=gen).to(x.device, x.dtype)
            x = torch.addcmul(x, sample, self.noise_strength.to(x.dtype), value=_SQRT2)
        return _clamp(F.leaky_relu(x, 0.2), self.clamp)


class ToRGB(nn.Module):
    """Modulated 1×1 conv to image channels (no demodulation)."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, clamp: float | None):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0,
                                  out_gain=1.0 / math.sqrt(in_channels))
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), self.bias, demodulate=False)
        return _clamp(x, self.clamp)


class MappingNetwork(nn.Module):
    """z (and a class embedding of the same width) → w, through an MLP with lr multiplier 0.01."""

    def __init__(self, z_dim: int, w_dim: int, n_classes: int, layers: int) -> None:
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.embed = EqualLinear(n_classes, z_dim)
        dims = [2 * z_dim] + [w_dim] * layers
        self.layers = nn.Sequential(
            *[EqualLinear(a, b, lr_multiplier=0.01, activation=True)
              for a, b in itertools.pairwise(dims)]
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(labels, self.n_classes).to(z.dtype)
        x = torch.cat([_normalize_2nd_moment(z), _normalize_2nd_moment(self.embed(onehot))], 1)
        return self.layers(x)


class SynthesisNetwork(nn.Module):
    """Constant 4×4 input, two modulated convs per resolution, skip-connected RGB outputs."""

    def __init__(
        self, resolution: int, img_channels: int, w_dim: int, channel_base: int,
        channel_max: int, clamp: float | None,
    ) -> None:
        super().__init__()
        self.resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        self.convs = nn.ModuleList([SynthesisLayer(ch[0], ch[0], w_dim, 4, False, clamp)])
        self.torgbs = nn.ModuleList([ToRGB(ch[0], img_channels, w_dim, clamp)])
        for i, res in enumerate(self.resolutions[1:], start=1):
            self.convs.append(SynthesisLayer(ch[i - 1], ch[i], w_dim, res, True, clamp))
            self.convs.append(SynthesisLayer(ch[i], ch[i], w_dim, res, False, clamp))
            self.torgbs.append(ToRGB(ch[i], img_channels, w_dim, clamp))
        # conv w's: 0 | 1, 2 | 3, 4 ...; each ToRGB shares the w of the next conv (as in
        # stylegan2): num_ws = 2 × number of resolutions.
        self.num_ws = 2 * len(self.resolutions)

    def forward(
        self, ws: torch.Tensor, noise: str = "random", gen: torch.Generator | None = None
    ) -> torch.Tensor:
        x = self.const.to(ws.dtype)[None].expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise, gen)
        img = self.torgbs[0](x, ws[:, 1])
        for i in range(1, len(self.resolutions)):
            x = self.convs[2 * i - 1](x, ws[:, 2 * i - 1], noise, gen)
            x = self.convs[2 * i](x, ws[:, 2 * i], noise, gen)
            img = _upsample2x(img) + self.torgbs[i](x, ws[:, 2 * i + 1])
        return img


class Generator(nn.Module):
    """Mapping + synthesis, with style mixing in training and per-class truncation."""

    def __init__(
        self, resolution: int, img_channels: int, n_classes: int, z_dim: int, w_dim: int,
        mapping_layers: int, channel_base: int, channel_max: int, clamp: float | None = 256.0,
    ) -> None:
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.mapping = MappingNetwork(z_dim, w_dim, n_classes, mapping_layers)
        self.synthesis = SynthesisNetwork(
            resolution, img_channels, w_dim, channel_base, channel_max, clamp
        )
        # Per-class mean w, computed after training; the centre of truncation.
        self.register_buffer("w_mean", torch.zeros(n_classes, w_dim))

    def mapping_ws(
        self, z: torch.Tensor, labels: torch.Tensor, psi: float = 1.0, mixing: float = 0.0
    ) -> torch.Tensor:
        """w for every layer (N×num_ws×w_dim); truncated toward the class mean when ``psi`` < 1.

        With probability ``mixing`` a sample switches, from a random layer on, to the w of a
        second z (style mixing regularisation); drawn on the device, so no host sync.
        """
        num_ws = self.synthesis.num_ws
        if mixing <= 0:
            return self._truncate(self.mapping(z, labels), labels, psi)[:, None].expand(
                -1, num_ws, -1)
        n = z.shape[0]
        both = self.mapping(torch.cat([z, torch.randn_like(z)]), torch.cat([labels, labels]))
        first = self._truncate(both[:n], labels, psi)
        second = self._truncate(both[n:], labels, psi)
        cutoff = torch.randint(1, num_ws, (n, 1), device=z.device)
        cutoff = torch.where(torch.rand((n, 1), device=z.device) < mixing, cutoff, num_ws)
        layer = torch.arange(num_ws, device=z.device)
        return torch.where((layer < cutoff)[:, :, None], first[:, None], second[:, None])

    def _truncate(self, w: torch.Tensor, labels: torch.Tensor, psi: float) -> torch.Tensor:
        return w if psi == 1.0 else self.w_mean[labels].to(w.dtype).lerp(w, psi)

    def forward(
        self, z: torch.Tensor, labels: torch.Tensor, psi: float = 1.0, noise: str = "random",
        gen: torch.Generator | None = None, mixing: float = 0.0,
    ) -> torch.Tensor:
        return self.synthesis(self.mapping_ws(z, labels, psi, mixing), noise, gen)

    @torch.no_grad()
    def compute_w_mean(self, n_per_class: int, gen: torch.Generator) -> None:
        """Set ``w_mean[c]`` to the mean of w over ``n_per_class`` random z for each class."""
        device = self.w_mean.device
        for c in range(self.n_classes):
            z = torch.randn(n_per_class, self.z_dim, generator=gen).to(device)
            labels = torch.full((n_per_class,), c, dtype=torch.long, device=device)
            self.w_mean[c] = self.mapping(z, labels).float().mean(0)


class Discriminator(nn.Module):
    """Residual discriminator with minibatch stddev and a class-projection output."""

    def __init__(
        self, resolution: int, img_channels: int, n_classes: int, channel_base: int,
        channel_max: int, mbstd_group: int = 4, clamp: float | None = 256.0,
    ) -> None:
        super().__init__()
        resolutions = [2**i for i in range(int(math.log2(resolution)), 2, -1)]
        self.fromrgb = EqualConv2d(
            img_channels, channels_at(resolution, channel_base, channel_max), 1, clamp=clamp
        )
        self.blocks = nn.ModuleList()
        for res in resolutions:
            cin = channels_at(res, channel_base, channel_max)
            cout = channels_at(res // 2, channel_base, channel_max)
            self.blocks.append(nn.ModuleDict({
                "conv0": EqualConv2d(cin, cin, 3, clamp=clamp),
                "conv1": EqualConv2d(cin, cout, 3, down=True, clamp=clamp),
                "skip": EqualConv2d(cin, cout, 1, bias=False, activation=False, down=True),
            }))
        ch = channels_at(4, channel_base, channel_max)
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(ch + 1, ch, 3, clamp=clamp)
        self.fc = EqualLinear(ch * 16, ch, activation=True)
        self.cmap_dim = ch
        # 1/sqrt(cmap_dim) of the projection folded into the output layer.
        self.out = EqualLinear(ch, self.cmap_dim, out_gain=1.0 / math.sqrt(self.cmap_dim))
        self.embed = EqualLinear(n_classes, self.cmap_dim)
        self.n_classes = n_classes

    def _minibatch_std(self, x: torch.Tensor, parts: int) -> torch.Tensor:
        # Groups of consecutive samples that never straddle the ``parts`` equal parts of the
        # batch, so fakes and reals judged in one call do not share a statistic.
        n, c, h, w = x.shape
        group = min(self.mbstd_group, n // parts)
        while (n // parts) % group:
            group -= 1
        y = x.float().reshape(-1, group, c, h, w)
        y = y.var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
        y = y.to(x.dtype)[:, None, None, None, None].expand(-1, group, 1, h, w)
        return torch.cat([x, y.reshape(n, 1, h, w)], 1)

    def forward(self, img: torch.Tensor, labels: torch.Tensor, parts: int = 1) -> torch.Tensor:
        """Logits (N) for images of classes ``labels``; ``parts`` > 1 when the batch is that
        many equal sets (e.g. fakes then reals) that must not share minibatch statistics."""
        x = self.fromrgb(img)
        for block in self.blocks:
            skip = block["skip"](x)
            x = block["conv1"](block["conv0"](x))
            x = (x + skip) * math.sqrt(0.5)
        x = self.conv(self._minibatch_std(x, parts))
        x = self.out(self.fc(x.flatten(1)))
        cmap = _normalize_2nd_moment(self.embed(F.one_hot(labels, self.n_classes).to(x.dtype)))
        return torch.linalg.vecdot(x, cmap)


# --------------------------------------------------------------------------- DiffAugment
AUGMENTATIONS = ("color", "translation", "cutout")


def _color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0–2) and contrast (×0.5–1.5), per image."""
    n = x.shape[0]
    factors = torch.rand((3, n, 1, 1, 1), device=x.device, dtype=x.dtype)
    x = x + (factors[0] - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = torch.lerp(mean, x, factors[1] * 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return torch.lerp(mean, x, factors[2] + 0.5)


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size (whole pixels), filling with zeros."""
    n, _, h, w = x.shape

    def axis(length: int) -> torch.Tensor:
        # pixel centres in grid_sample's [-1, 1] coordinates (float32: exact to 2^-24, where
        # half precision would misplace pixels of large images), moved by a whole shift
        shift = int(length * ratio + 0.5)
        steps = torch.rand((n, 1, 1), device=x.device) * (2 * shift + 1) - shift
        centres = torch.arange(length, device=x.device, dtype=torch.float32) * (2 / length)
        return centres + (steps.floor() * (2 / length) + (1 / length - 1))  # n×1×length

    grid = torch.stack([axis(w).expand(n, h, w), axis(h).transpose(1, 2).expand(n, h, w)], -1)
    moved = F.grid_sample(x.float(), grid, mode="nearest", padding_mode="zeros",
                          align_corners=False)
    return moved.to(x.dtype)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of ``ratio`` × the image size (clipped at the borders)."""
    n, _, h, w = x.shape

    def axis(length: int) -> torch.Tensor:  # n×length: inside the cut-out span
        cut = int(length * ratio + 0.5)
        start = (torch.rand((n, 1), device=x.device) * (length + 1 - cut % 2)).long() - cut // 2
        offset = torch.arange(length, device=x.device) - start
        return (offset >= 0) & (offset < cut)

    inside = axis(h)[:, :, None] & axis(w)[:, None]
    return x * (~inside)[:, None].to(x.dtype)


_AUGMENT = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...] | list[str]) -> torch.Tensor:
    """DiffAugment: apply the named augmentations (of :data:`AUGMENTATIONS`, in order) with
    fresh randomness per image; differentiable in ``x``; the identity for an empty policy."""
    for name in policy:
        x = _AUGMENT[name](x)
    return x
