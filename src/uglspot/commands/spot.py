"""``uglspot spot``: find events in any video with a trained model."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

ORDER = 40

SOCCERNET_HALF = re.compile(r"^([12])(_\d+p)?$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spot", help="spot events in video files with a trained model",
        description="Decode each video at the model's frame rate, read (or detect) its entities, score "
                    "overlapping windows, stitch, keep candidates and apply per-class NMS. Writes "
                    "OUT/<video>/events.json and timeline.png, OUT/predictions.json (E2E-Spot format) and, "
                    "for SoccerNet halves (<game>/1_224p.mkv ...), OUT/<game>/results_spotting.json.")
    parser.add_argument("input", type=Path, metavar="VIDEO_OR_DIR", help="a video file or a folder of videos")
    parser.add_argument("--model", type=Path, required=True, metavar="RUN_OR_MODEL_DIR",
                        help="a run directory of `uglspot train` (its best checkpoint) or a checkpoint directory")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--entities", type=Path, metavar="STORE_DIR",
                        help="entity stores of these videos (one per video, named by video id)")
    source.add_argument("--detector", metavar="NAME", help="detect entities now with this detector")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument("--threshold", type=float, help="candidate score threshold (default: the model's)")
    parser.add_argument("--nms-window", type=int, help="per-class NMS radius in frames (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline PNGs")
    parser.set_defaults(func=run)


def find_videos(path: Path) -> list[tuple[str, Path]]:
    """(video id, file) of the input: the file's stem, or paths relative to the
    folder without extension; a SoccerNet half ``<game>/1_224p.mkv`` is ``<game>/1``."""
    from uglspot.data.dataset import VIDEO_EXTENSIONS
    from uglspot.errors import UserError

    if path.is_file():
        files, root = [path], path.parent
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        root = path
        if not files:
            raise UserError(f"{path}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in this folder")
    else:
        raise UserError(f"{path}: no such file or folder")
    out = []
    for file in files:
        relative = file.relative_to(root).with_suffix("")
        match = SOCCERNET_HALF.match(relative.name)
        if match and len(relative.parts) > 1:
            relative = relative.with_name(match.group(1))
        out.append((relative.as_posix(), file))
    return out


def soccernet_half(video_id: str, file: Path) -> bool:
    return bool(SOCCERNET_HALF.match(file.stem)) and "/" in video_id


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from uglspot.data.labels import Event, VideoPredictions, write_predictions
    from uglspot.engine.infer import load_spotter
    from uglspot.engine.timeline import plot_timeline
    from uglspot.engine.train import Distributed, amp_mode, pick_device
    from uglspot.errors import BatchFailures, UserError
    from uglspot.io import safe_name, write_json_atomic

    videos = find_videos(args.input)
    for _, file in videos:
        if args.out.resolve() == file.resolve():
            raise UserError(f"--out {args.out} is an input video; choose an output folder")
    device = pick_device(args.device, Distributed())
    spotter = load_spotter(args.model, device)
    amp_dtype, _ = amp_mode("auto", device)
    uses_entities = bool(spotter.model.config.use_entities)
    if uses_entities and args.entities is None and args.detector is None:
        raise UserError(f"{spotter.directory}: this model uses scene entities; pass --entities STORE_DIR "
                        "(from `uglspot detect`) or --detector NAME")
    entity_root = args.entities
    if uses_entities and args.detector is not None:
        entity_root = detect_entities(args.detector, videos, spotter.settings, args.out / "entities", device)
    settings = spotter.settings
    size: Any = (settings["width"], settings["height"]) if settings.get("width") else settings["height"]
    names = {}
    for video_id, file in videos:
        name = safe_name(video_id)
        if name in names:
            raise UserError(f"{file} and {names[name]} map to the same output folder {name!r}; rename one")
        names[name] = file

    failures: list[tuple[str, str]] = []
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
    from uglspot.data.video import VideoReader, probe
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


def detect_entities(name: str, videos: list[tuple[str, Path]], settings: dict[str, Any], out: Path,
                    device: Any) -> Path:
    """Run detector ``name`` over the videos at the model's frame rate into entity stores under ``out``."""
    from uglspot.errors import UserError

    try:
        from uglspot.entities.detect import detect_video_to_store
    except ImportError:
        raise UserError(f"--detector {name}: entity detection is not available in this installation; "
                        "run `uglspot detect` first and pass --entities STORE_DIR") from None
    from uglspot.data.dataset import entity_store_path

    for video_id, file in videos:
        detect_video_to_store(name, file, entity_store_path(out, video_id), fps=settings.get("fps"), device=device)
    return out
