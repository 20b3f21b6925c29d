"""Spot events in any video with a trained model (``uglspot spot``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from uglspot.data.labels import VideoPredictions
    from uglspot.engine.infer import SpotResult


@dataclass
class SpotOutcome:
    """What :func:`spot_files` wrote and what failed."""

    out: Path
    events_files: dict[str, Path] = field(default_factory=dict)  # video id -> its events.json
    predictions: list[VideoPredictions] = field(default_factory=list)  # as in predictions.json
    predictions_file: Path | None = None  # None when no video was spotted
    index_file: Path | None = None  # index.json: each video id, its output folder and its file
    soccernet_files: dict[str, Path] = field(default_factory=dict)  # game -> its results_spotting.json
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video file or id, reason)
    notes: list[str] = field(default_factory=list)  # what was ignored or reused, for the user to read


def spot_files(videos: Sequence[str | Path], model: str | Path, out: str | Path | None, *,
               entities: str | Path | None = None, detector: str | None = None,
               detector_model: str | None = None, prompt: Sequence[str] | None = None,
               detector_batch_size: int = 8, threshold: float | None = None, nms_window: int | None = None,
               device: str = "auto", plot: bool = True,
               on_video: Callable[[SpotResult, Path], None] | None = None,
               runtime: str | None = None) -> SpotOutcome:
    """Spot events in ``videos`` (files, folders of videos, or .txt lists)
    with the model of a run or checkpoint folder; write
    ``out/<video>/events.json`` (and ``timeline.png`` unless ``plot`` is
    false, when one an earlier run left is removed), ``out/predictions.json``,
    ``out/index.json`` (video id → its output folder, whose name has only
    safe characters: ``ten minutes`` → ``ten_minutes``, ``game/1`` →
    ``game_1``) and, for SoccerNet halves, ``out/<game>/results_spotting.json``. A model that uses entities reads
    them from the stores in ``entities`` or detects them now with
    ``detector`` (into ``out/entities``). ``threshold`` defaults to the
    per-class thresholds validation chose (:func:`threshold_choice`; the
    outcome's notes say which were used), ``nms_window`` to the model's. ``on_video`` hears each spotted video and its
    events.json as soon as it is written. A video that cannot be spotted
    goes to the outcome's ``failures``; when no video is a file, raises.
    ``runtime``: ``torch``, or ``onnx`` to run the file of ``uglspot export``
    with ONNX Runtime on the CPU (``model`` an .onnx file, or a folder holding
    ``model.onnx``); None: onnx for an .onnx file, else torch."""
    from uglspot.errors import UserError
    from uglspot.lock import output_lock

    if not videos or out is None:
        raise UserError("give the videos to spot and --out OUT_DIR (or --live SOURCE to spot a stream)")
    out = Path(out)
    with output_lock(out, "spot"):  # one writer per folder: two would each rewrite predictions.json
        return _spot(videos, Path(model), out, Path(entities) if entities is not None else None,
                     DetectorChoice(detector, detector_model, prompt, detector_batch_size),
                     threshold, nms_window, device, plot, on_video, runtime)


@dataclass(frozen=True)
class DetectorChoice:
    """The detector ``spot`` runs for a model with entities (``name`` None: read stores)."""

    name: str | None
    model: str | None = None
    prompt: Sequence[str] | None = None
    batch_size: int = 8


def _spot(videos: Sequence[str | Path], model: Path, out: Path, entity_dir: Path | None,
          detector: DetectorChoice, threshold: float | None, nms_window: int | None, device_name: str,
          plot: bool, on_video: Callable[[SpotResult, Path], None] | None, runtime: str | None) -> SpotOutcome:
    from uglspot.data.inputs import video_entries
    from uglspot.data.labels import write_predictions
    from uglspot.engine.infer import inference_dtype, spot_videos
    from uglspot.engine.onnx_runtime import spotter_for
    from uglspot.engine.runtime import pick_device
    from uglspot.errors import BatchFailures, UserError
    from uglspot.io import own_folder, safe_name, write_json_atomic

    entries = [(video_id, file) for file, video_id in video_entries([Path(v) for v in videos])]
    names: dict[str, Path] = {}
    for video_id, file in entries:
        if safe_name(video_id) in names:
            raise UserError(f"{file} and {names[safe_name(video_id)]} map to the same output folder "
                            f"{safe_name(video_id)!r}; rename one")
        names[safe_name(video_id)] = file
    files = dict(entries)
    # a path that is not a video file is reported as such, before any store or model is looked for
    failures: list[tuple[str, str]] = [(video_id, "no such file" if not file.exists() else "not a file")
                                       for video_id, file in entries if not file.is_file()]
    if len(failures) == len(entries):
        raise BatchFailures("videos", [(str(files[name]), reason) for name, reason in failures])
    entries = [(video_id, file) for video_id, file in entries if file.is_file()]
    # a link at a video's output folder would have its events written into the link's target
    linked = [(video_id, file) for video_id, file in entries if (out / safe_name(video_id)).is_symlink()]
    failures += [(video_id, f"{out / safe_name(video_id)} is a symbolic link; uglspot never writes through one: "
                            "remove it or choose another --out") for video_id, _ in linked]
    entries = [entry for entry in entries if entry not in linked]
    if not entries:
        raise BatchFailures("videos", [(str(files[name]), reason) for name, reason in failures])
    outcome = SpotOutcome(out)
    device = pick_device(device_name)
    spotter = spotter_for(model, runtime, device)
    records, frames = probe_videos(spotter.settings, entries, failures)
    probed = {record.video: record for record in records}
    entries = [(video_id, file) for video_id, file in entries if video_id in probed]
    entities, entries = entity_source(spotter, entries, entity_dir, detector, out, device, failures, outcome.notes,
                                      probed)
    kept = {video_id for video_id, _ in entries}
    records = [record for record in records if record.video in kept]
    halves: dict[str, float] = {}
    index, stale = [], 0
    per_class, line = threshold_choice(spotter.settings, threshold)
    outcome.notes.append(line)
    precision = inference_dtype(spotter.settings.precision, device)
    for result in spot_videos(spotter, records, frames, entities, precision, threshold, nms_window,
                              desc=f"spot {spotter.model.config.name}", failures=failures,
                              class_thresholds=per_class):
        out_dir = own_folder(out / safe_name(result.video))
        write_json_atomic(out_dir / "events.json", result.to_json())
        if plot:
            write_timeline(out_dir / "timeline.png", result, spotter.classes)
        elif (out_dir / "timeline.png").is_file():  # an earlier run's, of other events
            (out_dir / "timeline.png").unlink()
            stale += 1
        index.append({"video": result.video, "folder": out_dir.name, "file": str(files[result.video])})
        outcome.predictions.append(result.record.as_predictions())
        outcome.events_files[result.video] = out_dir / "events.json"
        if soccernet_half(result.video, files[result.video]):
            halves[result.video] = result.fps
        if on_video is not None:
            on_video(result, out_dir / "events.json")
    if outcome.predictions:
        outcome.predictions_file = out / "predictions.json"
        write_predictions(outcome.predictions, outcome.predictions_file)
        outcome.index_file = out / "index.json"
        write_json_atomic(outcome.index_file, index)
    if stale:
        outcome.notes.append(f"removed {stale} timeline.png file(s) an earlier run left in {out} (--no-plot)")
    if halves:
        from uglspot.data.soccernet import predictions_to_soccernet, write_game_predictions

        for game in predictions_to_soccernet([p for p in outcome.predictions if p.video in halves], halves, "spot"):
            outcome.soccernet_files[game.game] = write_game_predictions(out, game)
    outcome.failures = [(str(files.get(name, name)), reason) for name, reason in failures]
    return outcome


def threshold_choice(settings: Any, threshold: float | None) -> tuple[dict[str, float] | None, str]:
    """The per-class thresholds ``spot`` keeps events at (None: one threshold
    for all) and a line saying which: ``threshold`` when given, else those
    validation chose (``inference.json`` ``class_thresholds``), else the
    model's candidate threshold."""
    if threshold is not None:
        return None, f"threshold: {threshold:g} for every class (--threshold)"
    chosen = settings.class_thresholds or {}
    if not chosen:
        return None, (f"threshold: {settings.threshold:g} for every class, the model's candidate threshold (its "
                      "run chose no per-class thresholds at validation); pass --threshold to keep fewer events")
    listed = ", ".join(f"{name} {value:.2g}" for name, value in chosen.items())
    rest = [name for name in settings.classes if name not in chosen]
    others = f"; {', '.join(rest)} {settings.threshold:g} (no validation events)" if rest else ""
    return dict(chosen), (f"thresholds per class, the best F1 on the validation videos at "
                          f"±{settings.threshold_tolerance} frame(s): {listed}{others}; --threshold overrides")


def runnable_detectors() -> tuple[str, ...]:
    """The detectors ``spot --detector`` can run on new videos (glip-import only converts files)."""
    from uglspot.entities.detector_settings import DETECTOR_NAMES

    return tuple(name for name in DETECTOR_NAMES if name != "glip-import")


def settings_fps(settings: Any) -> str:
    """The model's frame rate as ``uglspot detect --fps`` takes it."""
    return "native" if not settings.fps else f"{settings.fps:g}"


def soccernet_half(video_id: str, file: Path) -> bool:
    from uglspot.data.inputs import SOCCERNET_HALF

    return bool(SOCCERNET_HALF.match(file.stem)) and "/" in video_id


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


def entity_source(spotter: Any, videos: list[tuple[str, Path]], entity_dir: Path | None, detector: DetectorChoice,
                  out: Path, device: Any, failures: list[tuple[str, str]], notes: list[str],
                  probed: dict[str, Any] | None = None) -> tuple[Any, list[tuple[str, Path]]]:
    """The entity stores of ``videos`` (read from ``entity_dir`` or detected
    now into ``out/entities``) for a model that uses entities, and the
    videos that have one; the others go to ``failures``. With ``probed``
    (video id → its frame count and rate at the model's decoding), the stores
    are checked against both, as ``predict`` and training check them."""
    from uglspot.data.dataset import EntityWindows
    from uglspot.engine.store_checks import check_entity_stores
    from uglspot.entities.store import store_path
    from uglspot.errors import UserError

    settings = spotter.settings
    uses_entities = bool(spotter.model.config.use_entities)
    if not uses_entities:
        if detector.name or entity_dir:
            notes.append(f"note: {spotter.directory} does not use entities; --detector / --entities ignored")
        return None, videos
    trained = settings.entities or {}
    if entity_dir is None and detector.name is None:
        raise UserError(f"{spotter.directory}: this model uses scene entities; "
                        + entity_advice(trained.get("detector")))
    root = entity_dir
    if detector.name is not None:
        root = out / "entities"
        failures += detect_entities(detector, videos, settings, root, device, notes)
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
        probed = probed or {}
        check_entity_stores(root, [(video_id, probed[video_id].num_frames if video_id in probed else None)
                                   for video_id, _ in videos], spotter.model.config,
                            trained.get("prompt"), trained.get("features"),
                            {video_id: probed[video_id].fps for video_id, _ in videos if video_id in probed})
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


def detect_entities(detector: DetectorChoice, videos: list[tuple[str, Path]], settings: Any,
                    out: Path, device: Any, notes: list[str]) -> list[tuple[str, str]]:
    """Detect the videos' entities into stores under ``out`` at the model's
    frame rate, set up like the stores the model was trained on (its
    ``inference.json`` ``entities``) unless the options say otherwise.
    Videos already detected with the same settings are reused. Returns
    failures as (video id, reason)."""
    from uglspot.entities.pipeline import detect_to_stores

    config = detection_config(detector, settings)
    outcome = detect_to_stores(config, [(file, video_id) for video_id, file in videos], out, settings.fps,
                               str(device), detector.batch_size)
    if outcome.skipped:
        notes.append(f"{len(outcome.skipped)} video(s) already detected in {out}, reused")
    ids = {str(file): video_id for video_id, file in videos}
    return [(ids.get(name, name), reason) for name, reason in outcome.failures]


def detection_config(detector: DetectorChoice, settings: Any) -> Any:
    """The ``DetectorConfig`` ``spot`` runs ``detector`` with (offline and
    ``--live``): the settings of the stores the model was trained on (its
    ``inference.json`` ``entities``), with ``--detector-model`` and
    ``--prompt`` on top."""
    from dataclasses import replace

    from uglspot.entities.detector_settings import DEFAULT_MODELS
    from uglspot.entities.pipeline import config_for_stores

    config = config_for_stores(settings.entities or {}, detector.name)
    if detector.model:
        config = replace(config, model=None if detector.model == DEFAULT_MODELS.get(detector.name) else detector.model)
    if detector.prompt is not None:
        config = replace(config, prompt=list(detector.prompt))
    return config
