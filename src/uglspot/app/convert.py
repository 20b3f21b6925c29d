"""Labels and predictions between SoccerNet folders and E2E-Spot JSON
(``uglspot convert``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from uglspot.errors import UserError


@dataclass
class Converted:
    """What one conversion wrote."""

    out: Path  # the file or folder written
    items: int  # halves (to E2E-Spot) or games (to SoccerNet)
    events: int = 0  # events written (to E2E-Spot)
    past_end: int = 0  # of those, events at or past their half's num_frames
    empty: tuple[str, ...] = ()  # halves not written: no events and no length (to E2E-Spot)


def _reference(path: Path | None) -> dict:
    from uglspot.data.labels import read_e2e_labels

    if path is None:
        return {}
    return {video.video: video for video in read_e2e_labels(path, allow_past_end=True)}


def soccernet_to_e2e_file(soccernet_dir: str | Path, output: str | Path, fps: float | None = None,
                          reference: str | Path | None = None, half_duration: float | None = None,
                          class_list: str | Path | None = None) -> Converted:
    """Every ``<game>/Labels-v2.json`` under ``soccernet_dir`` into one
    E2E-Spot JSON ``output`` with the videos ``<game>/1`` and ``<game>/2``
    at ``fps`` (or each half's rate in the E2E-Spot file ``reference``);
    ``class_list``: also write the sorted class names found."""
    from uglspot.data.labels import write_e2e_labels
    from uglspot.data.soccernet import LABELS_FILE, find_games, read_labels_dir, soccernet_to_e2e
    from uglspot.io import refuse_overwrite, write_text_atomic

    soccernet_dir, output = Path(soccernet_dir), Path(output)
    reference = Path(reference) if reference is not None else None
    class_list = Path(class_list) if class_list is not None else None
    if fps is not None and fps <= 0:
        raise UserError(f"--fps {fps}: the frame rate must be positive")
    if half_duration is not None and half_duration <= 0:
        raise UserError(f"--half-duration {half_duration}: must be positive seconds")
    inputs = [soccernet_dir / game / LABELS_FILE for game in find_games(soccernet_dir, LABELS_FILE)]
    if not inputs:
        raise UserError(f"{soccernet_dir}: no {LABELS_FILE} found at any depth")
    inputs += [reference] if reference is not None else []
    for target in [output] + ([class_list] if class_list is not None else []):
        refuse_overwrite(target, *inputs)
    if class_list is not None and class_list.resolve() == output.resolve():
        raise UserError(f"{class_list}: the class list and the labels would be the same file")
    halves = _reference(reference)
    if fps is None and not halves:
        raise UserError("pass --fps (or --reference with each half's fps)")
    videos = soccernet_to_e2e(read_labels_dir(soccernet_dir), fps, halves, half_duration)
    # a half without events has a length only from --reference or --half-duration: 0 frames is no video
    empty = tuple(v.video for v in videos if v.num_frames == 0 and not v.events)
    videos = [v for v in videos if v.num_frames or v.events]
    write_e2e_labels(videos, output)
    if class_list is not None:
        classes = sorted({event.label for video in videos for event in video.events})
        write_text_atomic(class_list, "".join(f"{name}\n" for name in classes))
    past_end = sum(1 for v in videos for e in v.events if e.frame >= v.num_frames)
    return Converted(output, len(videos), sum(len(v.events) for v in videos), past_end, empty)


def _check_targets(targets: list[Path], inputs: list[Path], overwrite: bool, what: str) -> None:
    from uglspot.io import refuse_overwrite

    for target in targets:
        refuse_overwrite(target, *inputs)
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]}: already exists ({len(existing)} {what} file(s) would be replaced); "
                        "pass --overwrite or choose an empty OUT_DIR")


def e2e_to_soccernet_dirs(labels: str | Path, out_dir: str | Path, overwrite: bool = False) -> Converted:
    """``out_dir/<game>/Labels-v2.json`` for the videos ``<game>/1`` and
    ``<game>/2`` of the E2E-Spot file ``labels``."""
    from uglspot.data.labels import read_e2e_labels
    from uglspot.data.soccernet import LABELS_FILE, e2e_to_soccernet, game_dir, write_labels

    labels, out_dir = Path(labels), Path(out_dir)
    games = e2e_to_soccernet(read_e2e_labels(labels, allow_past_end=True), str(labels))
    targets = [game_dir(out_dir, g.game, str(labels)) / LABELS_FILE for g in games]
    _check_targets(targets, [labels], overwrite, LABELS_FILE)
    for game in games:
        write_labels(out_dir, game)
    return Converted(out_dir, len(games))


def predictions_to_soccernet_dirs(predictions: str | Path, out_dir: str | Path, fps: float | None = None,
                                  reference: str | Path | None = None, overwrite: bool = False) -> Converted:
    """``out_dir/<game>/results_spotting.json`` from E2E-Spot predictions at
    ``fps`` (or each video's rate in the E2E-Spot ground truth ``reference``)."""
    from uglspot.data.labels import read_predictions
    from uglspot.data.soccernet import PREDICTIONS_FILE, game_dir, predictions_to_soccernet, write_game_predictions

    predictions, out_dir = Path(predictions), Path(out_dir)
    reference = Path(reference) if reference is not None else None
    if fps is not None and fps <= 0:
        raise UserError(f"--fps {fps}: the frame rate must be positive")
    rates = fps if fps is not None else {v: video.fps for v, video in _reference(reference).items()}
    games = predictions_to_soccernet(read_predictions(predictions), rates, str(predictions))
    targets = [game_dir(out_dir, g.game, str(predictions)) / PREDICTIONS_FILE for g in games]
    inputs = [predictions] + ([reference] if reference is not None else [])
    _check_targets(targets, inputs, overwrite, PREDICTIONS_FILE)
    for game in games:
        write_game_predictions(out_dir, game)
    return Converted(out_dir, len(games))
