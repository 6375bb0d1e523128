"""Vector quantisation building blocks shared by VQ-VAE-2, the LDM first stage and code encoders.

- :class:`VectorQuantizerEMA`: a codebook updated by exponential moving averages (van den Oord
  et al. 2017, appendix; Razavi et al. 2019) with dead-code restart (unused codes are re-seeded
  from encoder outputs of the current batch, as in Jukebox), straight-through gradients.
- :class:`ResBlock`, :class:`ConvEncoder`, :class:`ConvDecoder`: the residual conv stacks of
  VQ-VAE-2, with a power-of-two down/up-sampling factor.
- :class:`VQAutoencoder`: one-level encoder → codebook → decoder, e.g. 8× spatial compression for
  latent diffusion, or a code-map encoder for Hamming-distance metrics (``encode`` → codes).

Every module works on float tensors N×C×H×W in [-1, 1]; quantisation runs in float32 even under
autocast so EMA statistics stay exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvDecoder", "ConvEncoder", "ResBlock", "VQAutoencoder", "VectorQuantizerEMA"]


class VectorQuantizerEMA(nn.Module):
    """Nearest-neighbour codebook of ``num_codes`` vectors of size ``dim``, EMA-updated.

    ``forward(z)`` takes N×dim×H×W and returns ``(quantized, commitment_loss, codes,
    perplexity)``; ``quantized`` carries straight-through gradients to ``z``, ``codes`` is
    N×H×W int64. In training mode the codebook follows the EMA of assigned encoder outputs;
    codes whose EMA usage drops below ``restart_threshold`` are replaced by random encoder
    outputs of the batch (dead-code restart).
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        decay: float = 0.99,
        commitment: float = 0.25,
        eps: float = 1e-5,
        restart_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.commitment, self.eps = decay, commitment, eps
        self.restart_threshold = restart_threshold
        embedding = torch.randn(num_codes, dim) / math.sqrt(dim)
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_sum", embedding.clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat`` (M×dim)."""
        emb = self.embedding
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ emb.t() + emb.pow(2).sum(1)[None]
        return dist.argmin(1)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes N×H×W → code vectors N×dim×H×W."""
        return F.embedding(codes, self.embedding).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes, minlength=self.num_codes).to(flat.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total
        self.embedding.copy_(self.embed_sum / smoothed.clamp_min(self.eps)[:, None])
        dead = self.cluster_size < self.restart_threshold
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
            fresh = flat[pick]
            self.embedding[dead] = fresh
            self.embed_sum[dead] = fresh * smoothed[dead, None]

    def forward(
        self, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type=z.device.type, enabled=False):
            z32 = z.float()
            n, d, h, w = z32.shape
            flat = z32.permute(0, 2, 3, 1).reshape(-1, d)
            codes = self.nearest(flat)
            if self.training:
                self._ema_update(flat.detach(), codes)
            quant = self.embed(codes.view(n, h, w))
            loss = self.commitment * F.mse_loss(z32, quant.detach())
            usage = torch.bincount(codes, minlength=self.num_codes).float() / codes.numel()
            perplexity = torch.exp(-(usage * (usage + 1e-10).log()).sum())
            quant = z32 + (quant - z32).detach()
        return quant, loss, codes.view(n, h, w), perplexity


class ResBlock(nn.Module):
    """ReLU → 3×3 conv → ReLU → 1×1 conv, added to the input (VQ-VAE-2 residual block)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _log2(factor: int) -> int:
    steps = round(math.log2(factor)) if factor >= 1 else -1
    if factor < 1 or 2**steps != factor:
        raise ValueError(f"sampling factor must be a power of two >= 1, got {factor}")
    return steps


class ConvEncoder(nn.Module):
    """Strided 4×4 convs (one per factor of 2) then a 3×3 conv and residual blocks."""

    def __init__(
        self, in_channels: int, channels: int, res_channels: int, n_res: int, downsample: int
    ) -> None:
        super().__init__()
        steps = _log2(downsample)
        layers: list[nn.Module] = []
        prev = in_channels
        for i in range(steps):
            out = channels // 2 if i < steps - 1 else channels
            layers += [nn.Conv2d(prev, out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            prev = out
        layers.append(nn.Conv2d(prev, channels, 3, padding=1))
        layers += [ResBlock(channels, res_channels) for _ in range(n_res)]
        layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """3×3 conv, residual blocks, then transposed 4×4 convs (one per factor of 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int,
        res_channels: int,
        n_res: int,
        upsample: int,
    ) -> None:
        super().__init__()
        steps = _log2(upsample)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1)]
        layers += [ResBlock(channels, res_channels) for _ in range(n_res)]
        layers.append(nn.ReLU(inplace=True))
        prev = channels
        for i in range(steps):
            last = i == steps - 1
            out = out_channels if last else channels // 2
            layers.append(nn.ConvTranspose2d(prev, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU(inplace=True))
            prev = out
        if steps == 0:
            layers.append(nn.Conv2d(prev, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VQAutoencoder(nn.Module):
    """One-level VQ autoencoder with ``downsample``× spatial compression.

    ``forward(x)`` → ``(reconstruction, vq_loss, codes)``. For latent diffusion,
    :meth:`encode_latent` gives the continuous pre-quantisation latent and
    :meth:`decode_latent` quantises and decodes it (as in Rombach et al.'s VQ-f8 models);
    :meth:`encode` / :meth:`decode_codes` work with the discrete code maps.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 128,
        res_channels: int = 32,
        n_res: int = 2,
        downsample: int = 8,
        codebook_size: int = 512,
        code_dim: int = 4,
        decay: float = 0.99,
        commitment: float = 0.25,
    ) -> None:
        super().__init__()
        self.downsample, self.code_dim = downsample, code_dim
        self.encoder = ConvEncoder(in_channels, channels, res_channels, n_res, downsample)
        self.pre_quant = nn.Conv2d(channels, code_dim, 1)
        self.quantizer = VectorQuantizerEMA(codebook_size, code_dim, decay, commitment)
        self.decoder = ConvDecoder(code_dim, in_channels, channels, res_channels, n_res, downsample)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous latent N×code_dim×(H/f)×(W/f) before quantisation."""
        return self.pre_quant(self.encoder(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Discrete code map N×(H/f)×(W/f)."""
        return self.quantizer(self.encode_latent(x))[2]

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Quantise a continuous latent and decode it to images in [-1, 1] (unclamped)."""
        return self.decoder(self.quantizer(z)[0])

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Decode a code map N×h×w to images."""
        return self.decoder(self.quantizer.embed(codes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        quant, loss, codes, _ = self.quantizer(self.encode_latent(x))
        return self.decoder(quant), loss, codes
