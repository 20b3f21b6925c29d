"""``uglspot predict``: spot every video of a labelled split and evaluate."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 45


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="spot a labelled split with a trained model and evaluate it",
        description="Run inference over every video of a split of the config's dataset (frames from "
                    "data.videos or data.frame_cache, entities from data.entities), write "
                    "predictions.json (E2E-Spot format; SoccerNet results_spotting.json per game for "
                    "soccernetv2) and, when the split has events, metrics.json with the dataset's metric.")
    parser.add_argument("config", type=Path, help="the training configuration (YAML) or a run's config.yaml")
    parser.add_argument("--split", default=None, help="split name, e.g. test, val, challenge (default: data.test_split)")
    parser.add_argument("--model", type=Path, metavar="RUN_OR_MODEL_DIR",
                        help="run or checkpoint directory (default: the config's out, best checkpoint)")
    parser.add_argument("--out", type=Path, metavar="OUT_DIR",
                        help="output folder (default: <model run>/predict-<split>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable); --set infer.batch_size=N also sets the "
                             "model's windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    parser.set_defaults(func=run)


def run_directory(model: Path) -> Path:
    """The run a model belongs to: ``model`` itself for a run directory, the
    run of a checkpoint folder (``RUN/checkpoints/best-...``), else the folder."""
    if model.parent.name == "checkpoints" and not (model / "checkpoints").is_dir():
        return model.parent.parent
    return model


def run(args: argparse.Namespace) -> int:
    from uglspot.data.dataset import EntityWindows
    from uglspot.data.labels import write_predictions
    from uglspot.engine.config import load_run_config
    from uglspot.engine.evaluate import evaluate
    from uglspot.engine.infer import load_spotter, spot_videos
    from uglspot.engine.preflight import check_prediction, set_keys
    from uglspot.engine.runtime import amp_mode
    from uglspot.engine.sources import frame_source, split_videos
    from uglspot.errors import BatchFailures
    from uglspot.io import write_json_atomic

    config = load_run_config(args.config, args.overrides)
    split = args.split or config.data.test_split
    spotter = load_spotter(args.model or config.out, "cpu")
    if "infer.batch_size" in set_keys(args.overrides):
        spotter.settings.batch_size = config.infer.batch_size
    classes = spotter.classes
    videos = split_videos(config, split, classes)
    device = check_prediction(config, split, videos, spotter, args.device).device
    spotter.model.to(device)
    out = args.out or run_directory(args.model or Path(config.out)) / f"predict-{split}"
    frames = frame_source(config, videos)
    entities = None
    if spotter.model.config.use_entities:
        entities = EntityWindows(config.data.entities, spotter.settings.entity_slots)
    failures: list[tuple[str, str]] = []
    predictions = [result.record.as_predictions()
                   for result in spot_videos(spotter, videos, frames, entities, amp_mode("auto", device)[0],
                                             desc=f"predict {spotter.model.config.name} {split}", failures=failures)]
    write_predictions(predictions, out / "predictions.json")
    print(f"{len(predictions)} videos -> {out / 'predictions.json'}")
    if config.train.metric == "soccernet_tight":
        from uglspot.data.soccernet import predictions_to_soccernet, write_game_predictions

        rates = {v.video: v.fps for v in videos}
        for game in predictions_to_soccernet(predictions, rates, "predict"):
            write_game_predictions(out / "soccernet", game)
        print(f"SoccerNet results_spotting.json per game under {out / 'soccernet'}")
    if any(v.events for v in videos) and not failures:
        metrics = evaluate(config.train.metric, videos, predictions, classes)
        write_json_atomic(out / "metrics.json", metrics)
        if config.train.metric == "frame_map":
            shown = "  ".join(f"mAP@{t}={100 * v:.2f}" for t, v in metrics["mAP"].items())
        else:
            shown = f"tight a-mAP={100 * metrics['tight']['a_mAP']:.2f}  loose a-mAP={100 * metrics['loose']['a_mAP']:.2f}"
        print(f"{split}: {shown}  -> {out / 'metrics.json'}")
    if failures:
        raise BatchFailures("videos", failures)
    return 0
