"""StyleGAN2 networks in pure PyTorch (no custom CUDA ops), class-conditional.

Follows Karras et al., *Analyzing and Improving the Image Quality of StyleGAN* (2020) and the
layout of NVIDIA's stylegan2-ada-pytorch: equalised learning rate everywhere, a mapping network
(lr multiplier 0.01) that also embeds the class label, modulated/demodulated 3×3 convolutions
with per-pixel noise inputs, a skip-architecture generator (every resolution adds its RGB
output to the upsampled image) and a residual discriminator with minibatch-stddev and a
projection (class-embedding) output. Up/downsampling uses the [1, 3, 3, 1] FIR filter:
bilinear 2× upsampling is that filter, downsampling is an explicit depthwise blur.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Discriminator", "Generator", "MappingNetwork", "SynthesisNetwork", "channels_at"]

_SQRT2 = math.sqrt(2.0)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: ``min(channel_base // resolution, channel_max)``."""
    return max(1, min(channel_base // resolution, channel_max))


def _lrelu(x: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
    x = F.leaky_relu(x, 0.2) * _SQRT2
    return x.clamp(-clamp, clamp) if clamp is not None else x


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
        return F.conv2d(F.pad(x, [pad] * 4), kernel, stride=stride, groups=channels)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (weights scaled at run time)."""

    def __init__(
        self, in_features: int, out_features: int, bias_init: float = 0.0,
        lr_multiplier: float = 1.0, activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(x.dtype) * self.weight_gain
        x = F.linear(x, weight, self.bias.to(x.dtype) * self.bias_gain)
        return _lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate; ``down`` blurs and subsamples by 2 first."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
        activation: bool = True, down: bool = False, clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.kernel_size, self.activation, self.down, self.clamp = (
            kernel_size, activation, down, clamp,
        )
        self.blur = _Blur() if down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.weight_gain).to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        if self.blur is not None:  # as stylegan2-ada: blur with padding, then strided conv
            k = self.kernel_size
            x = self.blur(x, pad=(4 - 2 + k - 1) // 2, stride=1 if k > 1 else 2)
            x = F.conv2d(x, weight, bias, stride=2 if k > 1 else 1)
        else:
            x = F.conv2d(x, weight, bias, padding=self.kernel_size // 2)
        return _lrelu(x, self.clamp) if self.activation else x


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool
) -> torch.Tensor:
    """Per-sample modulated (and demodulated) convolution, computed without grouped convs:
    scaling the input by the styles and the output by the demodulation coefficients is the same
    as convolving with per-sample weights, and batches as one ordinary convolution."""
    if demodulate and x.dtype == torch.float16:  # keep half-precision intermediates in range
        weight = weight / weight.flatten(1).abs().amax(dim=1).view(-1, 1, 1, 1)
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    out = F.conv2d(x * styles.to(x.dtype)[:, :, None, None], weight.to(x.dtype),
                   padding=weight.shape[-1] // 2)
    if demodulate:
        # Σ_{i,k} (w_oik s_i)² = Σ_i s_i² Σ_k w_oik²: N×out without materialising N weights.
        power = styles.float().square() @ weight.float().square().sum(dim=(2, 3)).t()
        out = out * (power + 1e-8).rsqrt().to(out.dtype)[:, :, None, None]
    return out


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv (optionally after 2× upsampling), noise input, bias, leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool,
        clamp: float | None,
    ) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.clamp, self.resolution = up, clamp, resolution
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: str, gen: torch.Generator | None
    ) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if self.up:
            x = _upsample2x(x)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True)
        if noise == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            if gen is None:  # training: device RNG (seeded by fit)
                sample = torch.randn(shape, device=x.device, dtype=x.dtype)
            else:  # sampling: drawn on the CPU so a seed gives the same images on any device
                sample = torch.randn(shape, generator=gen).to(x.device, x.dtype)
            x = x + sample * self.noise_strength.to(x.dtype)
        elif noise == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        return _lrelu(x + self.bias.to(x.dtype)[:, None, None], self.clamp)


class ToRGB(nn.Module):
    """Modulated 1×1 conv to image channels (no demodulation)."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, clamp: float | None):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain, self.clamp = 1.0 / math.sqrt(in_channels), clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        x = x + self.bias.to(x.dtype)[:, None, None]
        return x.clamp(-self.clamp, self.clamp) if self.clamp is not None else x


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
        """Broadcast w (N×num_ws×w_dim); truncated toward the class mean when ``psi`` < 1."""
        w = self.mapping(z, labels)
        if psi != 1.0:
            w = self.w_mean[labels].to(w.dtype).lerp(w, psi)
        ws = w[:, None].repeat(1, self.synthesis.num_ws, 1)
        if mixing > 0 and torch.rand([]).item() < mixing:
            cutoff = int(torch.randint(1, self.synthesis.num_ws, []).item())
            ws[:, cutoff:] = self.mapping(torch.randn_like(z), labels)[:, None]
        return ws

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
        self.out = EqualLinear(ch, self.cmap_dim)
        self.embed = EqualLinear(n_classes, self.cmap_dim)
        self.n_classes = n_classes

    def _minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.mbstd_group, n)
        while n % group:
            group -= 1
        y = x.float().reshape(group, -1, 1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=(2, 3, 4))
        y = y.reshape(-1, 1, 1, 1).repeat(group, 1, h, w).to(x.dtype)
        return torch.cat([x, y], 1)

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.fromrgb(img)
        for block in self.blocks:
            skip = block["skip"](x)
            x = block["conv1"](block["conv0"](x))
            x = (x + skip) * math.sqrt(0.5)
        x = self.conv(self._minibatch_std(x))
        x = self.out(self.fc(x.flatten(1)))
        cmap = self.embed(F.one_hot(labels, self.n_classes).to(x.dtype))
        return (x * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)
