"""``uglspot spot``: find events in any video with a trained model (``uglspot.app.spot``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uglspot.app.live import spot_live
from uglspot.app.spot import runnable_detectors, spot_files
from uglspot.commands import duration, fraction, non_negative_int, positive_int
from uglspot.errors import BatchFailures, Interrupted, UserError

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spot", help="spot events in video files with a trained model",
        description="Decode each video at the model's frame rate, read (or detect) its entities, score "
                    "overlapping windows, stitch, keep candidates and apply per-class NMS. Writes "
                    "OUT/<video>/events.json and timeline.png, OUT/predictions.json (E2E-Spot format), "
                    "OUT/index.json (each video id and its folder, e.g. 'ten minutes' -> ten_minutes/) and, "
                    "for SoccerNet halves (<game>/1_224p.mkv ...), OUT/<game>/results_spotting.json. "
                    "Video ids are paths below the folder given, without extension, as in "
                    "`uglspot frames` and `uglspot detect`.")
    parser.add_argument("videos", nargs="*", type=Path, metavar="VIDEO_OR_DIR",
                        help="video files, folders of videos, or .txt lists of paths")
    parser.add_argument("--model", type=Path, required=True, metavar="RUN_OR_MODEL_DIR",
                        help="a run directory of `uglspot train` (its best checkpoint) or a checkpoint directory; "
                             "or an .onnx file of `uglspot export`")
    parser.add_argument("--runtime", choices=["torch", "onnx"],
                        help="torch (PyTorch, on --device) or onnx (ONNX Runtime on the CPU: --model's .onnx file, "
                             "or model.onnx in the --model folder; --device then only places --detector); "
                             "default: onnx for an .onnx file, else torch")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--entities", type=Path, metavar="STORE_DIR",
                        help="entity stores of these videos (`uglspot detect --out STORE_DIR`)")
    source.add_argument("--detector", choices=runnable_detectors(),
                        help="detect entities now into OUT/entities/ (reused by the next run), at the model's "
                             "frame rate, with the vocabulary, thresholds and feature kind (roi or query) of "
                             "the stores the model was trained on; with --live, on each frame as it arrives "
                             "(events then wait for the detector)")
    parser.add_argument("--detector-model", metavar="ID_OR_PATH",
                        help="--detector's hub id or local model directory (default: the one the training "
                             "stores were made with, else the backend's default)")
    parser.add_argument("--prompt", metavar="NAMES",
                        help="--detector's comma-separated entity names (default: the training stores' "
                             "vocabulary; the order must be the one the model was trained with)")
    parser.add_argument("--detector-batch-size", type=positive_int, default=8, metavar="N", help="frames per detector batch")
    parser.add_argument("--out", type=Path, metavar="OUT_DIR", help="output folder (--live: a new events file; default stdout)")
    parser.add_argument("--live", metavar="SOURCE", help="spot a stream as it plays: a udp/tcp/rtsp/srt URL, a named "
                        "pipe or - (stdin); one JSON line per event, written at once (see docs/live.md)")
    parser.add_argument("--lookahead", type=duration, metavar="S", help="--live: an event waits at most S s (default: until final)")
    parser.add_argument("--stall-timeout", type=duration, default=10.0, metavar="S", help="--live: end after S s without a frame (default 10)")
    parser.add_argument("--threshold", type=fraction,
                        help="keep events scoring at least this, in every class (default: the per-class "
                             "thresholds validation chose, with the best F1; else the model's candidate threshold)")
    parser.add_argument("--nms-window", type=non_negative_int, help="per-class NMS radius in frames (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline PNGs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.detector is None and (args.detector_model or args.prompt):
        raise UserError("--detector-model and --prompt set up --detector; add --detector NAME "
                        "(or drop them when reading stores with --entities)")
    prompt = None if args.prompt is None else [p.strip() for p in args.prompt.split(",") if p.strip()]
    detection = dict(detector=args.detector, detector_model=args.detector_model, prompt=prompt,
                     detector_batch_size=args.detector_batch_size)
    if args.live is not None:
        outcome = spot_live(args.live, args.model, args.out, sys.stdout, videos=args.videos, lookahead=args.lookahead,
                            stall_timeout=args.stall_timeout, threshold=args.threshold, nms_window=args.nms_window,
                            device=args.device, entities=args.entities, runtime=args.runtime, **detection)
        print("\n".join([*(f"note: {note}" for note in outcome.notes), outcome.summary]), file=sys.stderr)
        if outcome.interrupted or outcome.error:
            raise Interrupted("every event final by then was written") if outcome.interrupted else UserError(outcome.error)
        return 0
    outcome = spot_files(args.videos, args.model, args.out, entities=args.entities, **detection,
                         threshold=args.threshold, nms_window=args.nms_window, device=args.device, plot=not args.no_plot,
                         on_video=lambda result, path: print(f"{result.video}: {len(result.events)} events -> {path}"),
                         runtime=args.runtime)
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    for game, path in outcome.soccernet_files.items():
        print(f"{game}: {path}")
    if outcome.failures:
        raise BatchFailures("videos", outcome.failures)
    return 0
