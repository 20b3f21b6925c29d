"""Each class's head chosen on the validation videos
(``uglspot.engine.head_choice``, ``head_choice: validation``): the rule on
hand-made rankings, the merged predictions against spotting with the
choice, and the choice kept in ``inference.json`` and applied on loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uglspot.data.labels import Event, Video, VideoPredictions
from uglspot.engine.head_choice import head_per_class, merge_by_class
from uglspot.engine.infer import VideoScores, load_spotter, spot_events
from uglspot.errors import UserError
from uglspot.model import create_model

CLASSES = ["Throw-in", "Card", "Rare"]


def _videos(count: int) -> list[Video]:
    """Each video: Throw-ins at 10 and 30, a Card at 50; "Rare" never happens."""
    return [Video(video=f"v{i}", num_frames=60, fps=8.0,
                  events=[Event(10, "Throw-in"), Event(30, "Throw-in"), Event(50, "Card")]) for i in range(count)]


def _guesses(video: str, throw_in: list[int], card: list[int]) -> VideoPredictions:
    """Predictions whose scores fall in the order the frames are listed."""
    events = [Event(f, "Throw-in", score=0.9 - 0.1 * k) for k, f in enumerate(throw_in)]
    events += [Event(f, "Card", score=0.9 - 0.1 * k) for k, f in enumerate(card)]
    events.append(Event(5, "Rare", score=0.5))
    return VideoPredictions(video=video, events=events)


def test_a_head_replaces_the_gates_pick_where_it_wins_on_nearly_every_resample_of_the_videos():
    videos = _videos(4)
    # the global head: Throw-ins well ranked in every video, the Card ranked below a false one
    glob = [_guesses(v.video, [10, 30], [20, 50]) for v in videos]
    # the entity side: the Card first everywhere; Throw-ins as well as the global head in one video, worse in three
    side = [_guesses("v0", [10, 30], [50]), *(_guesses(v.video, [20, 10, 30], [50]) for v in videos[1:])]
    # the gate gave Throw-in to the entity side and the Card to the global head: validation overrules both
    choice = head_per_class(videos, {0: glob, 1: side}, CLASSES, gate=[0, 1, 0, 1])
    assert choice[1:] == [0, 1, 1]  # Rare (no true event in the videos) keeps the gate's pick
    assert head_per_class(videos, {0: glob, 1: side}, CLASSES, gate=[0, 0, 1, 0])[1:] == [0, 1, 0]
    # one validation video says nothing about how a new match varies: the gate's picks stay
    assert head_per_class(videos[1:2], {0: glob[1:2], 1: side[1:2]}, CLASSES, gate=[0, 1, 0, 1]) == [0, 1, 0, 1]


def test_a_lead_on_all_the_videos_together_is_not_enough_when_one_video_says_otherwise():
    from uglspot.metrics.spotting import frame_map

    videos = _videos(4)
    glob = [_guesses(v.video, [10, 30], [20, 50]) for v in videos]
    # the entity side ranks the Card first in three videos of four, below two false ones in the fourth
    side = [*(_guesses(v.video, [10, 30], [50]) for v in videos[:3]), _guesses("v3", [10, 30], [20, 40, 50])]
    card_ap = [frame_map(videos, p, CLASSES, (1,)).per_class[1]["Card"] for p in (glob, side)]
    assert card_ap[1] > card_ap[0]  # the best AP on all four videos: the entity side
    assert head_per_class(videos, {0: glob, 1: side}, CLASSES, gate=[0, 0, 0, 0])[2] == 0


def test_the_merged_predictions_are_those_of_spotting_with_the_choice():
    rng = np.random.default_rng(0)
    heads = [rng.dirichlet(np.ones(len(CLASSES) + 1) * 0.3, size=80) for _ in range(2)]  # (T, K+1) each
    choice = [0, 1, 0, 1]
    chosen = np.stack([heads[choice[c]][:, c] for c in range(len(CLASSES) + 1)], axis=1)

    def predictions(probs: np.ndarray) -> VideoPredictions:
        events = spot_events(VideoScores(probs=probs, attention=None), CLASSES, threshold=0.05, nms_window=2)
        return VideoPredictions("v", [Event(e.frame, e.label, score=e.score) for e in events])

    merged = merge_by_class({0: [predictions(heads[0])], 1: [predictions(heads[1])]}, choice, CLASSES)
    assert merged == [predictions(chosen)]
    assert {e.label for e in merged[0].events} == set(CLASSES)


def test_a_model_reads_the_chosen_heads_and_falls_back_to_its_gate():
    torch.manual_seed(0)
    model = create_model("ugl_rny002", 3, clip_len=8, entity_slots=4).eval()
    assert model.pick_candidates == (0, 1)  # the fused head stands for the entity side
    model.choose_heads([0, 1, 0, 1])
    assert model.head_weights().argmax(dim=0).tolist() == [0, 1, 0, 1]
    model.choose_heads(None)
    assert model.head_weights().argmax(dim=0).tolist() == [min(h, 1) for h in model.gate_choice()]
    with pytest.raises(ValueError, match="4 heads out of \\(0, 1\\)"):
        model.choose_heads([0, 2, 0, 0])  # the entity classifier alone is not a choice under pick_ensemble
    assert create_model("ugl_rny002", 3, clip_len=8, entity_slots=4, head_mix="mean").pick_candidates == ()


def test_a_run_keeps_its_choice_and_spotting_uses_it(faults_run, faults_dataset):
    """The tiny run validates a ugl_rny002 model (the UGL recipe): its
    inference.json names a head for every class, loading applies it, and
    the validation videos spotted with it give the thresholds validation
    chose from the merged predictions."""
    from uglspot.data.dataset import EntityWindows, VideoFrames
    from uglspot.data.labels import read_class_list, read_e2e_labels
    from uglspot.engine.evaluate import class_thresholds
    from uglspot.engine.infer import validation_predictions

    run, _ = faults_run
    spotter = load_spotter(run)
    settings = spotter.settings
    assert set(settings.head_choice) == set(settings.classes)
    assert set(settings.head_choice.values()) <= {"global", "fused"}
    expected = [0] + [("global", "fused").index(settings.head_choice[c]) for c in settings.classes]
    assert spotter.model.head_choice.tolist()[1:] == expected[1:]  # column 0, 'no event', is never read
    classes = read_class_list(faults_dataset.labels / "class.txt")
    val = read_e2e_labels(faults_dataset.labels / "val.json", classes)
    frames = VideoFrames(faults_dataset.videos, {v.video: v.fps for v in val}, settings.height, settings.width)
    entities = EntityWindows(faults_dataset.entities, settings.entity_slots)
    predictions = validation_predictions(spotter, val, frames, entities, torch.device("cpu"))
    assert class_thresholds(val, predictions, classes, settings.threshold_tolerance) == settings.class_thresholds


@pytest.mark.parametrize("choice, named", [
    ({"wrong": "global"}, "for every class"),
    ("global", "for every class"),
])
def test_a_broken_head_choice_is_refused_in_one_line(faults_run, tmp_path, choice, named):
    from _engine_helpers import link_copy, rewrite

    from uglspot.engine.state import resolve

    run = link_copy(faults_run[0], tmp_path / "run")
    path = resolve(run / "checkpoints", "best") / "inference.json"
    settings = json.loads(path.read_text())
    rewrite(path, json.dumps({**settings, "head_choice": choice}))
    with pytest.raises(UserError, match=f"inference.json: key 'head_choice' must be .*{named}") as error:
        load_spotter(run)
    assert "\n" not in str(error.value)


def test_a_head_the_model_cannot_read_is_refused_in_one_line(faults_run, tmp_path):
    from _engine_helpers import link_copy, rewrite

    from uglspot.engine.state import resolve

    run = link_copy(faults_run[0], tmp_path / "run")
    path = resolve(run / "checkpoints", "best") / "inference.json"
    settings = json.loads(path.read_text())
    rewrite(path, json.dumps({**settings, "head_choice": {c: "entity" for c in settings["classes"]}}))
    with pytest.raises(UserError, match="inference.json: key 'head_choice' does not fit the model"):
        load_spotter(run)
