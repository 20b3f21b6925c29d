"""Find scene entities in videos with an open-vocabulary detector and write
one entity store per video (``uglspot detect``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from uglspot.entities.detector_settings import DEFAULT_MODELS, FEATURE_KINDS, SOCCER_PROMPT

if TYPE_CHECKING:
    from uglspot.entities.detector_settings import DetectorConfig

__all__ = ["DEFAULT_MODELS", "FEATURE_KINDS", "SOCCER_PROMPT", "DetectOutcome", "detect_videos",
           "detector_config"]


@dataclass
class DetectOutcome:
    """What one process (one rank under torchrun) of :func:`detect_videos` did."""

    out: Path
    rank: str  # "rank R/W: " under torchrun, else ""
    written: int | None = None  # stores written now (None for glip-import, which counts none)
    skipped: int = 0  # videos already done with the same settings
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video file, reason)


def detector_config(config_file: str | Path | None = None, **settings: Any) -> DetectorConfig:
    """A detector's settings: the ``detector:`` section of ``config_file``
    (or the whole file), with every setting given that is not None on top
    (``name``, ``model``, ``prompt``, ``box_threshold`` ... as in
    ``uglspot.entities.detector_settings.DetectorConfig``)."""
    from uglspot.config import from_dict
    from uglspot.entities.detector_settings import DetectorConfig
    from uglspot.errors import UserError

    data: dict = {}
    if config_file is not None:
        from uglspot.config import load_yaml

        config_file = Path(config_file)
        loaded = load_yaml(config_file)
        data = dict(loaded.get("detector", loaded)) if isinstance(loaded, dict) else loaded
    data.update({k: v for k, v in settings.items() if v is not None})
    return from_dict(DetectorConfig, data, str(config_file or "detector settings"))


def detect_videos(videos: Sequence[str | Path], out: str | Path, fps: float | None,
                  config: DetectorConfig, device: str = "auto", batch_size: int = 8, force: bool = False,
                  class_base: int = 1, glip_frame_size: tuple[int, int] | None = None) -> DetectOutcome:
    """Detect the entities of ``videos`` (files, folders, .txt lists; released
    UGL .pt files for ``glip-import``) at ``fps`` (None: each file's own
    rate) into ``out/<video>.entities.safetensors``. Under torchrun each
    rank takes its share, one GPU each. Videos already done with the same
    settings are skipped unless ``force``; a bad video goes to ``failures``."""
    from uglspot.engine.runtime import Distributed, main_rank_lock

    out = Path(out)
    dist = Distributed.from_env()
    # one writer per store folder; under torchrun rank 0 holds it for the job, until its own share is done
    with main_rank_lock(dist, out, "detect"):
        return _detect(videos, out, fps, config, device, batch_size, force, class_base, glip_frame_size, dist)


def _detect(videos: Sequence[str | Path], out: Path, fps: float | None, config: DetectorConfig, device: str,
            batch_size: int, force: bool, class_base: int, glip_frame_size: tuple[int, int] | None,
            dist: Any) -> DetectOutcome:
    """Detect this rank's share of the videos (``dist``: its Distributed) into stores."""
    from uglspot.app.batch import without_names
    from uglspot.data.inputs import video_entries
    from uglspot.engine.runtime import pick_device, shard
    from uglspot.errors import UserError

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    rank, world = dist.rank, dist.world_size
    mine = shard(video_entries(list(videos)), rank, world)
    outcome = DetectOutcome(out, f"rank {rank}/{world}: " if world > 1 else "")
    if config.name == "glip-import":
        failures, outcome.skipped = _import_glip(config, mine, out, fps, force, class_base, glip_frame_size,
                                                 outcome.rank)
    else:
        from uglspot.entities.pipeline import detect_to_stores

        done = detect_to_stores(config, mine, out, fps, pick_device(device, dist), batch_size, force,
                                label=outcome.rank, position=2 * rank)
        failures, outcome.skipped, outcome.written = done.failures, len(done.skipped), len(done.done)
    outcome.failures = without_names(failures)
    return outcome


def _import_glip(config: DetectorConfig, items: list, out: Path, fps: float | None, force: bool, class_base: int,
                 glip_frame_size: tuple[int, int] | None, who: str) -> tuple[list[tuple[str, str]], int]:
    """Released UGL entity files into stores (no model runs); (failures, skipped)."""
    from uglspot.app.batch import do_each, sort_out
    from uglspot.entities.pipeline import is_done, store_key
    from uglspot.entities.store import import_glip, store_path
    from uglspot.progress import progress_bar

    keys = {video_id: store_key(config, video_id, path, fps) for path, video_id in items if path.is_file()}
    batch = sort_out(items, lambda path, video_id: is_done(store_path(out, video_id), keys[video_id]), force)
    with progress_bar(f"{who}detect glip-import", len(batch.todo), "file", disable=not batch.todo) as bar:
        do_each(batch.todo, lambda path, video_id: import_glip(path, keys[video_id], class_base=class_base,
                                                               box_scale=glip_frame_size,
                                                               out_path=store_path(out, video_id)),
                batch.failures, bar)
    return batch.failures, batch.skipped
