"""Box and RoI operations of the detector backends: box format conversion,
FPN's level rule, a map's stride, and RoIAlign of boxes on a detector's
visual maps (the ``roi`` box features; see ``uglspot.entities.backends``).

Why not ``torchvision.ops.MultiScaleRoIAlign``, which does the same job:
it calls ``roi_align`` with ``aligned=False`` (boxes shifted by half a
cell), infers each map's scale from its height alone (a padded input's map
can have a cell more on one side, see :func:`map_stride`), and maps a level
to a map by its offset from the finest one, so the maps must be consecutive
powers of two. :func:`roi_features` pools pixel-aligned, takes each map's
stride from both sides, and picks the nearest map there is.
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import box_convert

# FPN's level rule (Lin et al. 2017, eq. 1): a box of 224 x 224 input pixels
# goes to the level of stride 2**4, one level up per doubling of its side.
CANONICAL_BOX = 224.0
CANONICAL_LEVEL = 4
ROI_GRID = 7  # RoIAlign output bins per side, averaged into one vector
ROI_SAMPLES = 2  # bilinear samples per bin side


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) centre, width, height → corners (the detectors' ``pred_boxes`` to the stores' form)."""
    return box_convert(boxes, in_fmt="cxcywh", out_fmt="xyxy")


def fpn_levels(boxes: torch.Tensor, strides: list[int]) -> torch.Tensor:
    """Index into ``strides`` of the map each box is pooled from, by FPN's
    rule: level ``floor(4 + log2(sqrt(w h) / 224))`` (stride ``2**level``),
    clamped to the levels there are. boxes (M, 4) xyxy in input pixels."""
    levels = torch.tensor([math.log2(s) for s in strides], device=boxes.device)  # (L,)
    side = ((boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)).sqrt()
    wanted = torch.floor(CANONICAL_LEVEL + torch.log2(side.clamp_min(1e-6) / CANONICAL_BOX) + 1e-6)
    wanted = wanted.clamp(levels.min(), levels.max())
    return (wanted[:, None] - levels[None, :]).abs().argmin(dim=1)  # (M,)


def map_stride(input_hw: tuple[int, int], map_hw: tuple[int, int]) -> int:
    """The stride in input pixels of a map of ``map_hw`` cells over an input of
    ``input_hw`` pixels, a power of two (maps of padded inputs have a cell more)."""
    return 2 ** round(math.log2(max(input_hw[0] / map_hw[0], input_hw[1] / map_hw[1])))


def roi_features(maps: list[torch.Tensor], strides: list[int], boxes: list[torch.Tensor]) -> list[torch.Tensor]:
    """One vector per box: RoIAlign (``ROI_GRID`` bins a side, pixel-aligned)
    of the box on the map its size picks (``fpn_levels``), averaged over the bins.

    maps: one (B, C, h, w) per level, ``strides[l]`` input pixels per cell;
    boxes: per image (n_b, 4) xyxy in input pixels. Returns per image (n_b, C) float32.
    """
    from torchvision.ops import roi_align

    B, C = maps[0].shape[:2]
    counts = [len(b) for b in boxes]
    rois = torch.cat([b.float() for b in boxes])  # (M, 4)
    if len(rois) == 0:
        return [rois.new_zeros(0, C) for _ in boxes]
    image = torch.repeat_interleave(torch.arange(B, device=rois.device), torch.tensor(counts, device=rois.device))
    rois = torch.cat([image[:, None].to(rois.dtype), rois], dim=1)  # (M, 5): image index, x1, y1, x2, y2
    level = fpn_levels(rois[:, 1:], strides)
    out = rois.new_zeros(len(rois), C)
    for index, (fmap, stride) in enumerate(zip(maps, strides)):
        chosen = (level == index).nonzero().squeeze(1)
        if len(chosen):
            pooled = roi_align(fmap.float(), rois[chosen], ROI_GRID, spatial_scale=1.0 / stride,
                               sampling_ratio=ROI_SAMPLES, aligned=True)  # (m, C, 7, 7)
            out[chosen] = pooled.mean(dim=(2, 3))
    return list(out.split(counts))
