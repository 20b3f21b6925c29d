"""Spot every video of a labelled split and evaluate it (``uglspot predict``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from uglspot.data.labels import VideoPredictions


@dataclass
class PredictOutcome:
    """What :func:`predict_split` wrote and measured."""

    split: str
    metric: str  # the config's train.metric: frame_map or soccernet_tight
    predictions: list[VideoPredictions]
    predictions_file: Path
    soccernet_dir: Path | None = None  # <game>/results_spotting.json, for soccernet_tight
    metrics: dict[str, Any] | None = None  # None when the split has no events or a video failed
    metrics_file: Path | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video id, reason)


def run_directory(model: Path) -> Path:
    """The run a model belongs to: ``model`` itself for a run directory, the
    run of a checkpoint folder (``RUN/checkpoints/best-...``), else the folder."""
    if model.parent.name == "checkpoints" and not (model / "checkpoints").is_dir():
        return model.parent.parent
    return model


def predict_split(config: str | Path, split: str | None = None, model: str | Path | None = None,
                  out: str | Path | None = None, overrides: Sequence[str] = (),
                  device: str = "auto") -> PredictOutcome:
    """Spot every video of ``split`` (default: the config's ``data.test_split``)
    with ``model`` (default: the config's run, best checkpoint) and write
    ``predictions.json`` into ``out`` (default ``<run>/predict-<split>``),
    SoccerNet files for ``soccernet_tight``, and ``metrics.json`` when the
    split has events and every video was spotted. ``overrides`` are
    ``KEY=VALUE`` config overrides; ``infer.batch_size`` also sets the
    model's windows per forward pass."""
    from uglspot.data.dataset import EntityWindows
    from uglspot.data.labels import write_predictions
    from uglspot.engine.config import load_run_config
    from uglspot.engine.evaluate import evaluate
    from uglspot.engine.infer import inference_dtype, load_spotter, spot_videos
    from uglspot.engine.preflight import check_prediction, set_keys
    from uglspot.engine.sources import frame_source, split_videos
    from uglspot.io import write_json_atomic
    from uglspot.lock import output_lock

    model = Path(model) if model is not None else None
    run_config = load_run_config(Path(config), list(overrides))
    split = split or run_config.data.test_split
    spotter = load_spotter(model or run_config.out, "cpu")
    if "infer.batch_size" in set_keys(list(overrides)):
        spotter.settings.batch_size = run_config.infer.batch_size
    classes = spotter.classes
    videos = split_videos(run_config, split, classes)
    device = check_prediction(run_config, split, videos, spotter, device).device
    spotter.model.to(device)
    out = Path(out) if out is not None else run_directory(model or Path(run_config.out)) / f"predict-{split}"
    # one writer per folder: two would each rewrite predictions.json and metrics.json
    with output_lock(out, "predict"):
        frames = frame_source(run_config, videos)
        entities = None
        if spotter.model.config.use_entities:
            entities = EntityWindows(run_config.data.entities, spotter.settings.entity_slots)
        failures: list[tuple[str, str]] = []
        predictions = [result.record.as_predictions()
                       for result in spot_videos(spotter, videos, frames, entities, inference_dtype(spotter.settings.precision, device),
                                                 desc=f"predict {spotter.model.config.name} {split}", failures=failures)]
        metric = run_config.train.metric
        outcome = PredictOutcome(split, metric, predictions, out / "predictions.json", failures=failures)
        write_predictions(predictions, outcome.predictions_file)
        if metric == "soccernet_tight":
            from uglspot.data.soccernet import predictions_to_soccernet, write_game_predictions

            rates = {v.video: v.fps for v in videos}
            outcome.soccernet_dir = out / "soccernet"
            for game in predictions_to_soccernet(predictions, rates, "predict"):
                write_game_predictions(outcome.soccernet_dir, game)
        if any(v.events for v in videos) and not failures:
            outcome.metrics = evaluate(metric, videos, predictions, classes)
            outcome.metrics_file = out / "metrics.json"
            write_json_atomic(outcome.metrics_file, outcome.metrics)
        return outcome
