"""An existing generator, as a plain function: the `callable` route onto the board.

Stands in for your own script. A suite names it as
``target = "examples/my_generator.py:generate"`` and MedSynBench calls
``generate(counts, seed, image_shape, **options)``: ``counts[c]`` images of class ``c`` (the
dataset's class order), the same images for the same seed, returned as one uint8 array N×C×H×W
with class 0's images first. Here: smooth random "anatomy" with a bright blob in the images of
class 1 and above (the demo's phantom X-rays mark pneumonia with a brighter lesion).
"""

from __future__ import annotations

import numpy as np


def generate(counts, seed, image_shape, lesion=0.3, smoothness=4):
    """``sum(counts)`` images of ``image_shape`` (C, H, W), class by class."""
    rng = np.random.default_rng(seed)
    channels, height, width = image_shape
    images = []
    for label, n in enumerate(counts):
        coarse = (n, channels, -(-height // smoothness), -(-width // smoothness))
        blocks = rng.standard_normal(coarse).repeat(smoothness, 2).repeat(smoothness, 3)
        smooth = blocks[:, :, :height, :width]  # a blocky texture of exactly the image size
        image = 0.45 + 0.12 * smooth
        if label > 0:  # a bright blob at a random place: the "finding"
            y, x = np.mgrid[:height, :width]
            cy = rng.uniform(0.3, 0.7, n)[:, None, None, None] * height
            cx = rng.uniform(0.2, 0.8, n)[:, None, None, None] * width
            radius = height / 8
            image = image + lesion * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2))
        images.append(np.clip(image * 255, 0, 255).round().astype(np.uint8))
    return np.concatenate(images)
