"""The recipe of the UGL-release parity fixture (tests/data/ugl_release/).

Everything large in the fixture is generated here, from integer arithmetic
that gives the same numbers on every machine and every library version:
the weights of a release checkpoint (from the release's own key names and
shapes, committed in the fixture), the clip of frames, and the GLIP entity
file. The script that made the fixture with the release's own code imports
this module, so the test and the fixture share one recipe.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

K = 3  # event classes; the release's num_classes is K + 1
CLIP = 8  # clip_len of the fixture model
HEIGHT, WIDTH = 64, 96  # frame size of the fixed clip
SLOTS = 50  # the release's MAX_OBJ
FEAT = 256  # the release's GLIP_DIM
VIDEO_FRAMES = 12
WINDOWS = (0, 4)  # the two clips of the batch: frames [0, 8) and [4, 12) of the video
# Objects per frame of the GLIP file (class ≥ 1); frames 0 and 7 have none, frame 3 has only rows of class 0,
# which the release's loader skips (and uglspot's glip-import with --class-base 1).
OBJECTS = (0, 1, 3, 0, 5, 2, 9, 0, 1, 4, 6, 2)
CLASS_ZERO_ROWS = {3: 2, 5: 1}  # frame → rows of class 0 (skipped)


def recipe_uniform(name: str, count: int) -> np.ndarray:
    """``count`` numbers in [0, 1) for ``name``: splitmix64 of a counter that
    starts at crc32(name) · 2^32, the top 53 bits as a fraction (float64)."""
    mask = np.uint64(0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = np.arange(count, dtype=np.uint64) + np.uint64(zlib.crc32(name.encode()) << 32)
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & mask
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & mask
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & mask
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def recipe_tensor(name: str, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    """A float32 tensor of ``shape`` uniform in [low, high) from ``recipe_uniform``."""
    count = int(np.prod(shape)) if shape else 1
    values = low + (high - low) * recipe_uniform(name, count)
    return torch.from_numpy(values.astype(np.float32)).reshape(shape)


def recipe_weight(name: str, shape: tuple[int, ...], dtype: str) -> torch.Tensor:
    """The value of checkpoint tensor ``name``: integers (BatchNorm's
    num_batches_tracked) 0; running variances in [0.5, 1.5); running means,
    biases and norm/BatchNorm shifts in [−0.1, 0.1); norm/BatchNorm scales
    (1-d ``weight`` or ``alpha``) in [0.9, 1.1); convolution kernels (4-d,
    5-d) uniform in ±√(6/fan_in) (He's, so the clip still shows in the
    backbone's output through its random BatchNorm statistics), every other
    tensor in ±1/√fan_in; fan_in the product of the dimensions after the first."""
    if not dtype.startswith("torch.float"):
        return torch.zeros(shape, dtype=getattr(torch, dtype.removeprefix("torch.")))
    last = name.rsplit(".", 1)[-1]
    if last == "running_var":
        return recipe_tensor(name, shape, 0.5, 1.5)
    if len(shape) == 1 and last in ("weight", "alpha"):
        return recipe_tensor(name, shape, 0.9, 1.1)
    if len(shape) == 1:  # biases, running means, norm shifts
        return recipe_tensor(name, shape, -0.1, 0.1)
    fan_in = float(np.prod(shape[1:]))
    bound = (6.0 / fan_in) ** 0.5 if len(shape) >= 4 else 1.0 / fan_in ** 0.5
    return recipe_tensor(name, shape, -bound, bound)


def recipe_state(keys: list[list]) -> dict[str, torch.Tensor]:
    """A release state dict from its ``[name, shape, dtype]`` list."""
    return {name: recipe_weight(name, tuple(shape), dtype) for name, shape, dtype in keys}


def recipe_clip() -> torch.Tensor:
    """The normalised frames (2, CLIP, 3, HEIGHT, WIDTH) both codes read."""
    return recipe_tensor("clip", (len(WINDOWS), CLIP, 3, HEIGHT, WIDTH), -1.7, 1.7)


def recipe_glip_rows(half: bool) -> torch.Tensor:
    """The GLIP entity file of the fixture's video: rows [frame, class,
    x1, y1, x2, y2, feature × 256], the frames' rows interleaved (frame
    order is not file order). With ``half`` the features are rounded to
    float16, as uglspot's entity store keeps them."""
    rows = []
    for frame in range(VIDEO_FRAMES):
        for i in range(OBJECTS[frame] + CLASS_ZERO_ROWS.get(frame, 0)):
            cls = 0 if i >= OBJECTS[frame] else 1 + (frame + i) % 5
            corner = recipe_tensor(f"box{frame}.{i}", (2,), 0.0, 0.5)
            size = recipe_tensor(f"size{frame}.{i}", (2,), 0.1, 0.5)
            feat = recipe_tensor(f"feat{frame}.{i}", (FEAT,), -3.0, 3.0)
            rows.append(torch.cat([torch.tensor([float(frame), float(cls)]), corner, corner + size, feat]))
    table = torch.stack(rows)  # (M, 262)
    order = torch.from_numpy(np.argsort(recipe_uniform("row order", len(table)), kind="stable"))
    table = table[order]
    if half:
        table[:, 6:] = table[:, 6:].half().float()
    return table
