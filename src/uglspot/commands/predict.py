"""``uglspot predict``: spot every video of a labelled split and evaluate
(``uglspot.app.predict``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uglspot.app.predict import predict_split
from uglspot.errors import BatchFailures

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


def run(args: argparse.Namespace) -> int:
    outcome = predict_split(args.config, args.split, args.model, args.out, args.overrides, args.device)
    print(f"{len(outcome.predictions)} videos -> {outcome.predictions_file}")
    if outcome.soccernet_dir is not None:
        print(f"SoccerNet results_spotting.json per game under {outcome.soccernet_dir}")
    metrics = outcome.metrics
    if metrics is not None:
        if outcome.metric == "frame_map":
            shown = "  ".join(f"mAP@{t}={100 * v:.2f}" for t, v in metrics["mAP"].items())
        else:
            shown = f"tight a-mAP={100 * metrics['tight']['a_mAP']:.2f}  loose a-mAP={100 * metrics['loose']['a_mAP']:.2f}"
        print(f"{outcome.split}: {shown}  -> {outcome.metrics_file}")
    if outcome.failures:
        raise BatchFailures("videos", outcome.failures)
    return 0
