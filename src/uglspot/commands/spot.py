"""``uglspot spot``: find events in any video with a trained model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ORDER = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    from uglspot.entities.detectors import DETECTOR_NAMES

    parser = subparsers.add_parser(
        "spot", help="spot events in video files with a trained model",
        description="Decode each video at the model's frame rate, read (or detect) its entities, score "
                    "overlapping windows, stitch, keep candidates and apply per-class NMS. Writes "
                    "OUT/<video>/events.json and timeline.png, OUT/predictions.json (E2E-Spot format) and, "
                    "for SoccerNet halves (<game>/1_224p.mkv ...), OUT/<game>/results_spotting.json. "
                    "Video ids are paths below the folder given, without extension, as in "
                    "`uglspot frames` and `uglspot detect`.")
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO_OR_DIR",
                        help="video files, folders of videos, or .txt lists of paths")
    parser.add_argument("--model", type=Path, required=True, metavar="RUN_OR_MODEL_DIR",
                        help="a run directory of `uglspot train` (its best checkpoint) or a checkpoint directory")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--entities", type=Path, metavar="STORE_DIR",
                        help="entity stores of these videos (`uglspot detect --out STORE_DIR`)")
    source.add_argument("--detector", choices=tuple(n for n in DETECTOR_NAMES if n != "glip-import"),
                        help="detect entities now into OUT/entities/ (reused by the next run), at the model's "
                             "frame rate, with the vocabulary, thresholds and feature kind (roi or query) of "
                             "the stores the model was trained on")
    parser.add_argument("--detector-model", metavar="ID_OR_PATH",
                        help="--detector's hub id or local model directory (default: the one the training "
                             "stores were made with, else the backend's default)")
    parser.add_argument("--prompt", metavar="NAMES",
                        help="--detector's comma-separated entity names (default: the training stores' "
                             "vocabulary; the order must be the one the model was trained with)")
    parser.add_argument("--detector-batch-size", type=int, default=8, metavar="N", help="frames per detector batch")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument("--threshold", type=float, help="candidate score threshold (default: the model's)")
    parser.add_argument("--nms-window", type=int, help="per-class NMS radius in frames (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline PNGs")
    parser.set_defaults(func=run)


def settings_fps(settings: dict[str, Any]) -> str:
    """The model's frame rate as ``uglspot detect --fps`` takes it."""
    return "native" if not settings.get("fps") else f"{settings['fps']:g}"


def soccernet_half(video_id: str, file: Path) -> bool:
    from uglspot.data.inputs import SOCCERNET_HALF

    return bool(SOCCERNET_HALF.match(file.stem)) and "/" in video_id


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from uglspot.data.inputs import video_entries
    from uglspot.data.labels import Event, VideoPredictions, write_predictions
    from uglspot.engine.infer import load_spotter
    from uglspot.engine.timeline import plot_timeline
    from uglspot.engine.runtime import amp_mode, pick_device
    from uglspot.errors import BatchFailures, UserError
    from uglspot.io import safe_name, write_json_atomic

    if args.detector is None and (args.detector_model or args.prompt):
        raise UserError("--detector-model and --prompt set up --detector; add --detector NAME "
                        "(or drop them when reading stores with --entities)")
    videos = [(video_id, file) for file, video_id in video_entries(args.videos)]
    for _, file in videos:
        if args.out.resolve() == file.resolve():
            raise UserError(f"--out {args.out} is an input video; choose an output folder")
    device = pick_device(args.device)
    spotter = load_spotter(args.model, device)
    amp_dtype, _ = amp_mode("auto", device)
    uses_entities = bool(spotter.model.config.use_entities)
    if uses_entities and args.entities is None and args.detector is None:
        trained = (spotter.settings.get("entities") or {}).get("detector")
        raise UserError(f"{spotter.directory}: this model uses scene entities; pass --entities STORE_DIR "
                        f"(from `uglspot detect`) or --detector {trained or 'NAME'}"
                        + (" (the detector of its training stores)" if trained else ""))
    entity_root = args.entities
    failures: list[tuple[str, str]] = []
    if uses_entities and args.detector is not None:
        entity_root = args.out / "entities"
        failures = detect_entities(args, videos, spotter.settings, entity_root, device)
        bad = {name for name, _ in failures}
        videos = [(video_id, file) for video_id, file in videos if str(file) not in bad]
    elif not uses_entities and (args.detector or args.entities):
        print(f"note: {spotter.directory} does not use entities; --detector / --entities ignored", file=sys.stderr)
    if uses_entities:
        from uglspot.engine.entities import check_entity_stores
        from uglspot.entities.store import store_path

        if args.detector is None and not entity_root.is_dir():
            raise UserError(f"--entities {entity_root}: no such folder; create the stores with "
                            f"`uglspot detect VIDEOS --fps {settings_fps(spotter.settings)} --out {entity_root}`")
        for video_id, file in videos:
            if not store_path(entity_root, video_id).is_file():
                failures.append((str(file), f"no entity store {store_path(entity_root, video_id)}; create it with "
                                            f"`uglspot detect {file} --fps {settings_fps(spotter.settings)} "
                                            f"--out {entity_root}`"))
        bad = {name for name, _ in failures}
        videos = [(video_id, file) for video_id, file in videos if str(file) not in bad]
        if videos:
            check_entity_stores(entity_root, [(video_id, None) for video_id, _ in videos], spotter.model.config,
                                (spotter.settings.get("entities") or {}).get("prompt"),
                                (spotter.settings.get("entities") or {}).get("features"))
    settings = spotter.settings
    size: Any = (settings["width"], settings["height"]) if settings.get("width") else settings["height"]
    names = {}
    for video_id, file in videos:
        name = safe_name(video_id)
        if name in names:
            raise UserError(f"{file} and {names[name]} map to the same output folder {name!r}; rename one")
        names[name] = file

    predictions: list[VideoPredictions] = []
    halves: dict[str, float] = {}
    for video_id, file in tqdm(videos, desc="videos", unit="video", disable=len(videos) < 2):
        try:
            result = _spot_one(spotter, video_id, file, size, entity_root, amp_dtype, args)
        except (UserError, OSError, RuntimeError, ValueError) as exc:
            failures.append((str(file), str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        out_dir = args.out / safe_name(video_id)
        write_json_atomic(out_dir / "events.json", result.to_json())
        if not args.no_plot:
            plot_timeline(out_dir / "timeline.png", result.scores.probs, spotter.classes, result.fps,
                          [(e.frame, e.label, e.score) for e in result.events], video_id)
        predictions.append(VideoPredictions(video_id, [Event(e.frame, e.label, score=e.score) for e in result.events]))
        if soccernet_half(video_id, file):
            halves[video_id] = result.fps
        print(f"{video_id}: {len(result.events)} events -> {out_dir / 'events.json'}")
    if predictions:
        write_predictions(predictions, args.out / "predictions.json")
    if halves:
        from uglspot.data.soccernet import predictions_to_soccernet, write_game_predictions

        for game in predictions_to_soccernet([p for p in predictions if p.video in halves], halves, "spot"):
            print(f"{game.game}: {write_game_predictions(args.out, game)}")
    if failures:
        raise BatchFailures("videos", failures)
    return 0


def _spot_one(spotter: Any, video_id: str, file: Path, size: Any, entity_root: Path | None,
              amp_dtype: Any, args: argparse.Namespace) -> Any:
    from tqdm import tqdm

    from uglspot.data.clips import inference_windows
    from uglspot.data.dataset import EntityWindows
    from uglspot.video import VideoReader, probe
    from uglspot.engine.infer import spot_video

    settings = spotter.settings
    reader = VideoReader(file, fps=settings.get("fps"), size=size)
    num_frames = int(reader.num_frames)
    fps = float(settings.get("fps") or probe(file).fps)
    read_entities = vocabulary = None
    if spotter.model.config.use_entities:
        windows = EntityWindows(entity_root, settings["entity_slots"])
        read_entities = lambda start, count: windows.window(video_id, start, count)  # noqa: E731
        vocabulary = windows.vocabulary(video_id)
    total = len(inference_windows(num_frames, settings["clip_len"], settings["pad"]))
    with tqdm(total=total, desc=video_id[-40:], unit="window", leave=False) as bar:
        return spot_video(spotter, video_id, num_frames, fps, reader.read, read_entities, vocabulary or (),
                          amp_dtype, args.threshold, args.nms_window, bar.update)


def detect_entities(args: argparse.Namespace, videos: list[tuple[str, Path]], settings: dict[str, Any],
                    out: Path, device: Any) -> list[tuple[str, str]]:
    """Detect the videos' entities into stores under ``out`` at the model's
    frame rate, set up like the stores the model was trained on (its
    ``inference.json`` ``entities``) unless the options say otherwise.
    Videos already detected with the same settings are reused. Returns failures."""
    from uglspot.config import from_dict
    from uglspot.entities.detect import DetectorConfig, detect_to_stores
    from uglspot.entities.detectors import DEFAULT_MODELS, FEATURE_KINDS

    trained = settings.get("entities") or {}
    data: dict[str, Any] = {"name": args.detector}
    if trained.get("detector") == args.detector:  # same backend: same model, thresholds and input size
        data.update(model=trained["model"], box_threshold=trained["box_threshold"],
                    text_threshold=trained["text_threshold"], max_per_frame=trained["max_per_frame"],
                    image_size=trained["size"])
    if trained.get("prompt"):
        data["prompt"] = list(trained["prompt"])
    if trained.get("features") in FEATURE_KINDS:  # roi or query, as the training stores; else the default
        data["features"] = trained["features"]
    if args.detector_model:
        data["model"] = args.detector_model
    if args.prompt is not None:
        data["prompt"] = [p.strip() for p in args.prompt.split(",") if p.strip()]
    if data.get("model") == DEFAULT_MODELS.get(args.detector):
        data["model"] = None
    config = from_dict(DetectorConfig, data, "spot --detector settings")
    outcome = detect_to_stores(config, [(file, video_id) for video_id, file in videos], out, settings.get("fps"),
                               str(device), args.detector_batch_size)
    if outcome.skipped:
        print(f"{len(outcome.skipped)} video(s) already detected in {out}, reused", file=sys.stderr)
    return outcome.failures
