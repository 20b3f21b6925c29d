"""Training clips as tensors: uint8 frames, dense labels and entity tensors
of the same frames.

Where frames come from is separate from which frames to read
(``uglspot.data.clips``): a :class:`VideoFrames` source decodes video files
(``<videos>/<video id>.<ext>``, SoccerNet halves as ``<game>/<half>_224p.mkv``
too) with ``VideoReader``; a :class:`CachedFrames` source reads a
``FrameCache``. Entities come from one entity store per video
(``EntityStore.open``), read through ``window`` so a clip never loads a
whole video. Frames and entities outside the video are zeros / empty.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from uglspot.data.clips import Clip, dense_labels, video_events
from uglspot.data.labels import Video
from uglspot.entities.batch import EntityBatch
from uglspot.entities.store import store_path
from uglspot.data.inputs import find_video_file
from uglspot.errors import UserError
from uglspot.io import inside


class FrameSource(Protocol):
    def read(self, video_id: str, start: int, count: int) -> torch.Tensor:
        """uint8 (count, 3, H, W); frames outside the video are zeros."""

    def num_frames(self, video_id: str) -> int: ...


class VideoFrames:
    """Decode frames from video files; keeps a few readers open per process."""

    def __init__(self, root: str | Path | None, fps: dict[str, float | None], height: int | None,
                 width: int | None = None, max_open: int = 4, files: dict[str, Path] | None = None):
        """Videos are ``files[video id]`` when given, else found under ``root``
        (:func:`find_video_file`)."""
        self.root = Path(root) if root is not None else None
        self.files = files or {}
        self.fps = fps
        self.size: int | tuple[int, int] | None = (width, height) if width and height else height
        self.max_open = max_open
        self._readers: OrderedDict[str, Any] = OrderedDict()
        for video_id in fps:  # an id that escapes root is a bad labels file: refused before any work starts
            if video_id not in self.files and self.root is not None:  # files[] names its own path
                inside(self.root, video_id)

    def reader(self, video_id: str) -> Any:
        from uglspot.video import VideoReader

        if video_id in self._readers:
            self._readers.move_to_end(video_id)
            return self._readers[video_id]
        path = self.files.get(video_id) or find_video_file(self.root, video_id)
        reader = VideoReader(path, fps=self.fps.get(video_id), size=self.size)
        self._readers[video_id] = reader
        while len(self._readers) > self.max_open:
            self._readers.popitem(last=False)
        return reader

    def read(self, video_id: str, start: int, count: int) -> torch.Tensor:
        return self.reader(video_id).read(start, count)

    def num_frames(self, video_id: str) -> int:
        return int(self.reader(video_id).num_frames)

    def __getstate__(self) -> dict[str, Any]:  # open readers stay in their process
        return {**self.__dict__, "_readers": OrderedDict()}


class CachedFrames:
    """Frames from a ``FrameCache`` directory (already decoded and resized)."""

    def __init__(self, directory: str | Path):
        from uglspot.data.frame_cache import FrameCache

        self.cache = FrameCache(directory)

    def read(self, video_id: str, start: int, count: int) -> torch.Tensor:
        return self.cache.read(video_id, start, count)

    def num_frames(self, video_id: str) -> int:
        return int(self.cache.num_frames(video_id))


class EntityWindows:
    """Entity tensors of frame windows, one ``EntityStore`` per video, opened lazily."""

    def __init__(self, root: str | Path, slots: int, max_open: int = 16,
                 open_store: Callable[[Path], Any] | None = None):
        self.root = Path(root)
        self.slots = slots
        self.max_open = max_open
        self._open_store = open_store
        self._stores: OrderedDict[str, Any] = OrderedDict()

    def store(self, video_id: str) -> Any:
        if video_id in self._stores:
            self._stores.move_to_end(video_id)
            return self._stores[video_id]
        path = store_path(self.root, video_id)
        if self._open_store is not None:
            store = self._open_store(path)
        else:
            from uglspot.entities.store import EntityStore

            store = EntityStore.open(path)
        self._stores[video_id] = store
        while len(self._stores) > self.max_open:
            self._stores.popitem(last=False)
        return store

    @property
    def feat_dim(self) -> int | None:
        return None if not self._stores else next(iter(self._stores.values())).feat_dim

    def window(self, video_id: str, start: int, count: int) -> dict[str, torch.Tensor]:
        """Tensors boxes (T, N, 4), cls (T, N), score (T, N), mask (T, N) [, feat (T, N, De)]."""
        window = self.store(video_id).window(start, count, slots=self.slots)
        out = {name: torch.from_numpy(np.ascontiguousarray(window[name]))
               for name in ("boxes", "cls", "score", "mask")}
        out["cls"] = out["cls"].long()
        if window.get("feat") is not None:
            out["feat"] = torch.from_numpy(np.ascontiguousarray(window["feat"])).float()
        return out

    def vocabulary(self, video_id: str) -> list[str]:
        return list(self.store(video_id).vocabulary)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_stores": OrderedDict()}


def entity_batch(sample: dict[str, torch.Tensor]) -> EntityBatch | None:
    """The ``EntityBatch`` of a collated batch (keys ``entity_*``), or None without entities."""
    if "entity_boxes" not in sample:
        return None
    return EntityBatch(boxes=sample["entity_boxes"], cls=sample["entity_cls"], score=sample["entity_score"],
                       mask=sample["entity_mask"], feat=sample.get("entity_feat"))


class ClipDataset(Dataset):
    """The clips of one epoch (or its unconsumed rest) as training samples.

    A sample is ``{"frames": uint8 (T, 3, H, W), "labels": long (T,),
    "video": str, "start": int}`` plus ``entity_boxes`` (T, N, 4),
    ``entity_cls``, ``entity_score``, ``entity_mask`` (T, N) and
    ``entity_feat`` (T, N, De) when an entity source is given.
    """

    def __init__(self, clips: Sequence[Clip], videos: Sequence[Video], classes: Sequence[str],
                 frames: FrameSource, entities: EntityWindows | None = None, dilate: int = 0):
        self.clips = list(clips)
        self.videos = list(videos)
        self.frames = frames
        self.entities = entities
        self.dilate = dilate
        index = {name: i + 1 for i, name in enumerate(classes)}
        self.events = [video_events(v, index) for v in self.videos]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        clip = self.clips[i]
        video = self.videos[clip.video_index]
        frames = self.frames.read(video.video, clip.start, clip.length)
        if frames.shape[0] != clip.length or frames.dtype != torch.uint8:
            raise UserError(f"video {video.video!r}: frame source gave {tuple(frames.shape)} {frames.dtype} "
                            f"for {clip.length} frames from {clip.start}; expected uint8 (T, 3, H, W)")
        labels = dense_labels(self.events[clip.video_index], clip.start, clip.length, video.num_frames, self.dilate)
        sample: dict[str, Any] = {"frames": frames, "labels": torch.from_numpy(labels),
                                  "video": video.video, "start": clip.start}
        if self.entities is not None:
            window = self.entities.window(video.video, clip.start, clip.length)
            sample.update({f"entity_{name}": value for name, value in window.items()})
        return sample
