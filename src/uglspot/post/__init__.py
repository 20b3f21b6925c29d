"""Post-processing of per-frame scores into events: window stitching, peak
picking, NMS and soft-NMS (``nms``). Pure numpy."""
