"""A compact class-conditional UNet and the DDPM/DDIM maths for latent diffusion.

The UNet follows Ho et al. (2020) / Rombach et al. (2022): residual blocks with GroupNorm,
SiLU and an added time+class embedding, self-attention at the coarser levels, skip connections
between the down and up paths. Classes are embedded with one extra "null" class so the model
can be trained with condition dropout and sampled with classifier-free guidance.

:class:`Diffusion` holds the noise schedule (the LDM "scaled linear" betas), the ε-prediction
training loss and deterministic DDIM sampling (Song et al. 2021, η = 0 by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Diffusion", "UNet"]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (N) → N×dim."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4) or 1, channels)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * cout))
        self.out_norm = _norm(cout)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift  # scale-shift norm (Dhariwal & Nichol)
        return self.skip(x) + self.out_layers(h)


class _Attention(nn.Module):
    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2)
        )
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """ε-prediction UNet: ``forward(x, t, y)`` with ``y`` in 0..n_classes (n_classes = null).

    ``mults`` sets the channel multiplier per level (one 2× downsampling between levels);
    ``attention_levels`` lists the levels (0 = finest) with self-attention.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 128,
        mults: Sequence[int] = (1, 2, 2),
        n_res: int = 2,
        attention_levels: Sequence[int] = (1, 2),
        n_classes: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.channels, self.n_classes = channels, n_classes
        emb_dim = 4 * channels
        self.time_mlp = nn.Sequential(
            nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.class_embed = nn.Embedding(n_classes + 1, emb_dim)
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [channels], channels
        for level, mult in enumerate(mults):
            for _ in range(n_res):
                block = nn.ModuleList([_ResBlock(ch, channels * mult, emb_dim, dropout)])
                ch = channels * mult
                if level in attention_levels:
                    block.append(_Attention(ch))
                self.down.append(block)
                skips.append(ch)
            if level < len(mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid = nn.ModuleList(
            [
                _ResBlock(ch, ch, emb_dim, dropout),
                _Attention(ch),
                _ResBlock(ch, ch, emb_dim, dropout),
            ]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for i in range(n_res + 1):
                block = nn.ModuleList(
                    [_ResBlock(ch + skips.pop(), channels * mult, emb_dim, dropout)]
                )
                ch = channels * mult
                if level in attention_levels:
                    block.append(_Attention(ch))
                if level > 0 and i == n_res:
                    block.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    block.append(nn.Conv2d(ch, ch, 3, padding=1))
                self.up.append(block)
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @staticmethod
    def _run_block(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in block:
            h = layer(h, emb) if isinstance(layer, _ResBlock) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.channels)) + self.class_embed(y)
        h = self.stem(x)
        hs = [h]
        for block in self.down:
            h = self._run_block(block, h, emb)
            hs.append(h)
        h = self.mid[0](h, emb)
        h = self.mid[1](h)
        h = self.mid[2](h, emb)
        for block in self.up:
            h = self._run_block(block, torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


class Diffusion:
    """DDPM noise schedule, training loss and DDIM sampler over ``timesteps`` steps."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012):
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=torch.float64) ** 2
        self.timesteps = timesteps
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)

    def loss(
        self, model: nn.Module, x0: torch.Tensor, y: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """ε-prediction MSE at uniformly drawn timesteps (noise drawn from ``gen`` on CPU)."""
        n = x0.shape[0]
        t = torch.randint(0, self.timesteps, (n,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device, x0.dtype)
        a = self.alphas_cumprod[t].to(x0.device, torch.float32)[:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        return F.mse_loss(model(xt, t.to(x0.device), y).float(), noise.float())

    @torch.no_grad()
    def ddim_sample(
        self,
        model: nn.Module,
        shape: Sequence[int],
        y: torch.Tensor,
        gen: torch.Generator,
        device: torch.device,
        steps: int = 50,
        eta: float = 0.0,
        guidance: float = 1.0,
        null_class: int = 0,
    ) -> torch.Tensor:
        """DDIM from pure noise in ``steps`` steps; ``guidance`` > 1 is classifier-free guidance."""
        steps = max(1, min(steps, self.timesteps))
        times = torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()
        x = torch.randn(tuple(shape), generator=gen).to(device)
        null = torch.full_like(y, null_class)
        for i, t in enumerate(times):
            a = float(self.alphas_cumprod[t])
            a_prev = float(self.alphas_cumprod[times[i + 1]]) if i + 1 < len(times) else 1.0
            tt = torch.full((x.shape[0],), t, device=device, dtype=torch.long)
            if guidance != 1.0:
                both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
                cond, uncond = both.float().chunk(2)
                eps = uncond + guidance * (cond - uncond)
            else:
                eps = model(x, tt, y).float()
            x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            sigma = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
            x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
            if sigma > 0 and i + 1 < len(times):
                x = x + sigma * torch.randn(x.shape, generator=gen).to(device)
        return x
