"""Pictures of the noise levels: a grid of noise x severity for images, the variants of a text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from monai_imc.imageio import display_view, shrink
from monai_imc.noise.base import SEVERITIES, check_severity
from monai_imc.noise.local import LocalNoise, base_noise, is_local_noise
from monai_imc.noise.metrics import edit_distance, psnr
from monai_imc.noise.registry import get_noise

__all__ = ["NoiseGrid", "render_noise_grid", "shrink", "text_variants"]


@dataclass(frozen=True)
class NoiseGrid:
    """A rendered grid and the PSNR (dB) of every tile against the clean image.

    Attributes:
        image: the grid, rows = noises, columns = clean then the severities.
        psnr: ``{noise: [PSNR at each severity]}``.
        severities: the severities of the columns.
    """

    image: Image.Image
    psnr: dict[str, list[float]]
    severities: tuple[int, ...]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_noise_grid(
    array: np.ndarray,
    noises: Sequence[str],
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    window: tuple[float, float] | None = None,
    invert: bool = False,
    tile: int = 192,
    progress: bool = False,
    region: np.ndarray | None = None,
) -> NoiseGrid:
    """Apply each image noise at each severity to one image and lay the results out as a labelled grid.

    Local noises (``local-<noise>``, :mod:`monai_imc.noise.local`) act inside ``region``.

    Every tile is displayed with the clean image's window, so intensity changes stay visible.

    Args:
        array: channel-first image ``(C, H, W)`` or volume ``(C, H, W, D)`` (its middle slice is shown).
        noises: image noise names from the registry.
        severities: the columns, each in 1..5.
        seed: the seed of every noise (the same draws at every severity).
        window: display ``(center, width)``; ``None``: the clean image's 0.5-99.5 percentiles.
        invert: display high values dark (MONOCHROME1).
        tile: the tile size in pixels.
        progress: show a progress bar.
        region: where the local noises (``local-<noise>``) act, a mask of any size (resized to the image);
            ``None``: each one's seeded random rectangle.

    Raises:
        ValueError: an unknown or non-image noise, or a severity outside 1..5.
    """
    severities = tuple(check_severity(s) for s in severities)
    specs = [get_noise(n) for n in noises]
    for spec in specs:
        if spec.modality != "image":
            raise ValueError(f"noise {spec.name!r} is a text noise, not an image noise")
    if window is None:
        low, high = np.percentile(array[..., array.shape[-1] // 2] if array.ndim == 4 else array, [0.5, 99.5])
        window = ((low + high) / 2.0, max(float(high - low), 1e-6))

    label_w, header_h, caption_h, pad = 120, 26, 20, 4
    label_w = max(label_w, 8 * max((len(s.name) for s in specs), default=0) + 16)  # local-bias_field
    cols = 1 + len(severities)
    mode = "RGB" if array.shape[0] == 3 else "L"
    grid = Image.new(mode, (label_w + cols * (tile + pad), header_h + len(specs) * (tile + caption_h + pad)), "white")
    draw = ImageDraw.Draw(grid)
    font, small = _font(15), _font(13)
    for c, title in enumerate(["clean", *[f"severity {s}" for s in severities]]):
        draw.text((label_w + c * (tile + pad) + tile // 2, header_h // 2), title, fill="black", font=font, anchor="mm")

    def paste(view: np.ndarray, row: int, col: int, caption: str) -> None:
        picture = Image.fromarray(view).convert(mode)
        picture.thumbnail((tile, tile))
        x = label_w + col * (tile + pad) + (tile - picture.width) // 2
        y = header_h + row * (tile + caption_h + pad) + (tile - picture.height) // 2
        grid.paste(picture, (x, y))
        cx = label_w + col * (tile + pad) + tile // 2
        cy = header_h + row * (tile + caption_h + pad) + tile + caption_h // 2
        draw.text((cx, cy), caption, fill="black", font=small, anchor="mm")

    table: dict[str, list[float]] = {}
    clean_view = display_view(array, window, invert)
    for row, spec in enumerate(tqdm(specs, desc="noise preview", disable=not progress)):
        y = header_h + row * (tile + caption_h + pad) + tile // 2
        draw.text((8, y), spec.name, fill="black", font=font, anchor="lm")
        paste(clean_view, row, 0, "")
        table[spec.name] = []
        for col, severity in enumerate(severities, start=1):
            if region is not None and is_local_noise(spec.name):
                noisy = LocalNoise(base_noise(spec.name), severity, seed, region=region)(array)
            else:
                noisy = spec.apply(array, severity=severity, seed=seed)
            value = psnr(array, noisy)
            table[spec.name].append(value)
            paste(display_view(noisy, window, invert), row, col, f"{value:.1f} dB")
    return NoiseGrid(image=grid, psnr=table, severities=severities)


def text_variants(
    text: str, noises: Sequence[str], severities: Sequence[int] = SEVERITIES, seed: int = 0
) -> list[tuple[str, int, int, str]]:
    """Every text noise at every severity applied to ``text``.

    Returns:
        rows ``(noise, severity, edit distance to the original, corrupted text)``.

    Raises:
        ValueError: empty text, an unknown or non-text noise, or a severity outside 1..5.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty: nothing to corrupt")
    severities = tuple(check_severity(s) for s in severities)
    rows = []
    for name in noises:
        spec = get_noise(name)
        if spec.modality != "text":
            raise ValueError(f"noise {name!r} is an image noise, not a text noise")
        for severity in severities:
            noisy = spec.apply(text, severity=severity, seed=seed)
            rows.append((name, severity, edit_distance(text, noisy), noisy))
    return rows
