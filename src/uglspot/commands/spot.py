"""``uglspot spot``: find events in any video with a trained model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from uglspot.commands import fraction, non_negative_int, positive_int

ORDER = 40


def runnable_detectors() -> tuple[str, ...]:
    """The detectors ``spot --detector`` can run on new videos (glip-import only converts files)."""
    from uglspot.entities.detectors import DETECTOR_NAMES

    return tuple(name for name in DETECTOR_NAMES if name != "glip-import")


def register(subparsers: argparse._SubParsersAction) -> None:
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
    source.add_argument("--detector", choices=runnable_detectors(),
                        help="detect entities now into OUT/entities/ (reused by the next run), at the model's "
                             "frame rate, with the vocabulary, thresholds and feature kind (roi or query) of "
                             "the stores the model was trained on")
    parser.add_argument("--detector-model", metavar="ID_OR_PATH",
                        help="--detector's hub id or local model directory (default: the one the training "
                             "stores were made with, else the backend's default)")
    parser.add_argument("--prompt", metavar="NAMES",
                        help="--detector's comma-separated entity names (default: the training stores' "
                             "vocabulary; the order must be the one the model was trained with)")
    parser.add_argument("--detector-batch-size", type=positive_int, default=8, metavar="N", help="frames per detector batch")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument("--threshold", type=fraction, help="candidate score threshold (default: the model's)")
    parser.add_argument("--nms-window", type=non_negative_int, help="per-class NMS radius in frames (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline PNGs")
    parser.set_defaults(func=run)


def settings_fps(settings: Any) -> str:
    """The model's frame rate as ``uglspot detect --fps`` takes it."""
    return "native" if not settings.fps else f"{settings.fps:g}"


def soccernet_half(video_id: str, file: Path) -> bool:
    from uglspot.data.inputs import SOCCERNET_HALF

    return bool(SOCCERNET_HALF.match(file.stem)) and "/" in video_id


def run(args: argparse.Namespace) -> int:
    from uglspot.lock import output_lock

    with output_lock(args.out, "spot"):  # one writer per folder: two would each rewrite predictions.json
        return spot(args)


def spot(args: argparse.Namespace) -> int:
    from uglspot.data.inputs import video_entries
    from uglspot.data.labels import write_predictions
    from uglspot.engine.infer import load_spotter, spot_videos
    from uglspot.engine.runtime import amp_mode, pick_device
    from uglspot.errors import BatchFailures, UserError
    from uglspot.io import safe_name, write_json_atomic

    if args.detector is None and (args.detector_model or args.prompt):
        raise UserError("--detector-model and --prompt set up --detector; add --detector NAME "
                        "(or drop them when reading stores with --entities)")
    videos = [(video_id, file) for file, video_id in video_entries(args.videos)]
    names: dict[str, Path] = {}
    for video_id, file in videos:
        if safe_name(video_id) in names:
            raise UserError(f"{file} and {names[safe_name(video_id)]} map to the same output folder "
                            f"{safe_name(video_id)!r}; rename one")
        names[safe_name(video_id)] = file
    files = dict(videos)
    # a path that is not a video file is reported as such, before any store or model is looked for
    failures: list[tuple[str, str]] = [(video_id, "no such file" if not file.exists() else "not a file")
                                       for video_id, file in videos if not file.is_file()]
    if len(failures) == len(videos):
        raise BatchFailures("videos", [(str(files[name]), reason) for name, reason in failures])
    videos = [(video_id, file) for video_id, file in videos if file.is_file()]
    device = pick_device(args.device)
    spotter = load_spotter(args.model, device)
    entities, videos = entity_source(args, spotter, videos, device, failures)
    records, frames = probe_videos(spotter.settings, videos, failures)
    predictions = []
    halves: dict[str, float] = {}
    for result in spot_videos(spotter, records, frames, entities, amp_mode("auto", device)[0], args.threshold,
                              args.nms_window, desc=f"spot {spotter.model.config.name}", failures=failures):
        out_dir = args.out / safe_name(result.video)
        write_json_atomic(out_dir / "events.json", result.to_json())
        if not args.no_plot:
            write_timeline(out_dir / "timeline.png", result, spotter.classes)
        predictions.append(result.record.as_predictions())
        if soccernet_half(result.video, files[result.video]):
            halves[result.video] = result.fps
        print(f"{result.video}: {len(result.events)} events -> {out_dir / 'events.json'}")
    if predictions:
        write_predictions(predictions, args.out / "predictions.json")
    if halves:
        from uglspot.data.soccernet import predictions_to_soccernet, write_game_predictions

        for game in predictions_to_soccernet([p for p in predictions if p.video in halves], halves, "spot"):
            print(f"{game.game}: {write_game_predictions(args.out, game)}")
    if failures:
        raise BatchFailures("videos", [(str(files.get(name, name)), reason) for name, reason in failures])
    return 0


def write_timeline(path: Path, result: Any, classes: list[str]) -> None:
    """The timeline PNG of one spotted video (report.plots.timeline_figure, with its per-frame scores)."""
    from uglspot.io import atomic_path
    from uglspot.report.plots import TIMELINE_FRACTION, relative_thresholds, timeline_figure

    png = timeline_figure(result.video, classes, None, {"spotted": result.record}, result.num_frames, result.fps,
                          {"spotted": relative_thresholds(result.record, classes)},
                          f"≥ {TIMELINE_FRACTION:g} × the top score", probs=result.scores.probs)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)


def probe_videos(settings: Any, videos: list[tuple[str, Path]],
                 failures: list[tuple[str, str]]) -> tuple[list[Any], Any]:
    """The frame count and rate of every video at the model's decoding, and
    a frame source over the files; a video that cannot be opened goes to
    ``failures``."""
    from uglspot.data.dataset import VideoFrames
    from uglspot.data.labels import Video
    from uglspot.engine.infer import VIDEO_ERRORS

    frames = VideoFrames(None, {video_id: settings.fps for video_id, _ in videos}, settings.height, settings.width,
                         files=dict(videos))
    records = []
    for video_id, file in videos:
        try:
            reader = frames.reader(video_id)
            records.append(Video(video_id, int(reader.num_frames), float(settings.fps or reader.info.fps), []))
        except VIDEO_ERRORS as exc:
            failures.append((video_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    return records, frames


def entity_source(args: argparse.Namespace, spotter: Any, videos: list[tuple[str, Path]], device: Any,
                  failures: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, Path]]]:
    """The entity stores of ``videos`` (read from --entities or detected now
    with --detector) for a model that uses entities, and the videos that
    have one; the others go to ``failures``."""
    from uglspot.data.dataset import EntityWindows
    from uglspot.engine.entities import check_entity_stores
    from uglspot.entities.store import store_path
    from uglspot.errors import UserError

    settings = spotter.settings
    uses_entities = bool(spotter.model.config.use_entities)
    if not uses_entities:
        if args.detector or args.entities:
            print(f"note: {spotter.directory} does not use entities; --detector / --entities ignored",
                  file=sys.stderr)
        return None, videos
    trained = settings.entities or {}
    if args.entities is None and args.detector is None:
        raise UserError(f"{spotter.directory}: this model uses scene entities; "
                        + entity_advice(trained.get("detector")))
    root = args.entities
    if args.detector is not None:
        root = args.out / "entities"
        failures += [(video_id, reason) for video_id, reason in detect_entities(args, videos, settings, root, device)]
    elif not root.is_dir():
        raise UserError(f"--entities {root}: no such folder; create the stores with "
                        f"`uglspot detect VIDEOS --fps {settings_fps(settings)} --out {root}`")
    bad = {name for name, _ in failures}
    for video_id, file in videos:
        if video_id not in bad and not store_path(root, video_id).is_file():
            failures.append((video_id, f"no entity store {store_path(root, video_id)}; create it with "
                                       f"`uglspot detect {file} --fps {settings_fps(settings)} --out {root}`"))
    bad = {name for name, _ in failures}
    videos = [(video_id, file) for video_id, file in videos if video_id not in bad]
    if videos:
        check_entity_stores(root, [(video_id, None) for video_id, _ in videos], spotter.model.config,
                            trained.get("prompt"), trained.get("features"))
    return EntityWindows(root, settings.entity_slots), videos


def entity_advice(made_by: str | None) -> str:
    """How to give ``spot`` the entities of a model whose training stores
    came from the detector ``made_by``: every option named is one ``spot``
    takes, every detector one it can run."""
    runnable = runnable_detectors()
    stores = "pass --entities STORE_DIR"
    if made_by in runnable:
        return f"{stores} (from `uglspot detect`) or --detector {made_by} (the detector of its training stores)"
    if made_by == "synthetic":
        return (f"{stores}: its training stores come from the simulated detector of `uglspot synth`, which "
                "spot cannot run; for synthetic matches pass the stores synth wrote (--entities DATA/entities)")
    if made_by:
        return (f"{stores}: its training stores come from {made_by!r}, which spot cannot run; make stores "
                f"the same way (`uglspot detect --detector {made_by}`)")
    return f"{stores} (from `uglspot detect`) or --detector NAME ({', '.join(runnable)})"


def detect_entities(args: argparse.Namespace, videos: list[tuple[str, Path]], settings: Any,
                    out: Path, device: Any) -> list[tuple[str, str]]:
    """Detect the videos' entities into stores under ``out`` at the model's
    frame rate, set up like the stores the model was trained on (its
    ``inference.json`` ``entities``) unless the options say otherwise.
    Videos already detected with the same settings are reused. Returns
    failures as (video id, reason)."""
    from uglspot.config import from_dict
    from uglspot.entities.detect import DetectorConfig, detect_to_stores
    from uglspot.entities.detectors import DEFAULT_MODELS, FEATURE_KINDS

    trained = settings.entities or {}
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
    outcome = detect_to_stores(config, [(file, video_id) for video_id, file in videos], out, settings.fps,
                               str(device), args.detector_batch_size)
    if outcome.skipped:
        print(f"{len(outcome.skipped)} video(s) already detected in {out}, reused", file=sys.stderr)
    ids = {str(file): video_id for video_id, file in videos}
    return [(ids.get(name, name), reason) for name, reason in outcome.failures]
