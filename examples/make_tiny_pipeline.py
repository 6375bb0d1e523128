"""Save a tiny, randomly initialised diffusers pipeline: a stand-in for your trained one.

    python examples/make_tiny_pipeline.py runs/tiny-pipeline

writes a ``DDPMPipeline`` whose UNet takes class labels (``num_class_embeds``: the demo's 2 classes
plus a "no class" label for guidance), 64×64 grayscale like the demo's phantom X-rays. Its images
are noise — it has never seen an X-ray — which the board will show. Your own pipeline folder
(anything ``pipeline.save_pretrained(folder)`` wrote) goes where this one goes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel


def main(folder: Path) -> None:
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=64, in_channels=1, out_channels=1, num_class_embeds=3,
        block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    pipeline = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000))
    pipeline.save_pretrained(folder)
    print(f"saved a tiny class-conditioned DDPM pipeline to {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tiny-pipeline"))
