"""`uglspot spot --live` (issue 24): a synthetic match pushed at real-time
pace through a named pipe or 127.0.0.1 TCP (PyAV muxing MPEG-TS, no ffmpeg
binary) gives, with a lookahead long enough, exactly the offline events of
the same file; a bounded lookahead bounds every decision; a stream that
stalls, restarts, breaks or never opens ends with one line; Ctrl-C keeps
what was written; memory stays flat over an hour of video."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from _engine_helpers import CLASSES, FPS, HEIGHT, render, write_entities, write_video
from _live_helpers import Pusher, fifo, free_port, write_ts
from uglspot.cli import main
from uglspot.data.labels import Event, Video
from uglspot.engine.model_folder import save_model
from uglspot.entities.store import store_path
from uglspot.engine.infer import load_spotter, spot_videos
from uglspot.engine.live import LiveSpotter, full_lookahead, replay, window_scorer
from uglspot.io import write_json_atomic
from uglspot.model.spotter import create_model

ROOT = Path(__file__).resolve().parents[1]
EVENTS = [Event(5, "flash"), Event(20, "red"), Event(33, "flash")]
CLIP, PAD, NMS = 8, 2, 1


def spotter_dir(directory: Path, name: str = "e2e_rny002", height: int = HEIGHT, **options) -> Path:
    """A randomly initialised model saved as `uglspot train` saves checkpoints; threshold 0 keeps
    every NMS survivor, so the comparison sees hundreds of scores."""
    torch.manual_seed(0)
    save_model(create_model(name, len(CLASSES), clip_len=CLIP, **options), directory)
    write_json_atomic(directory / "inference.json", {
        "dataset": "tiny", "classes": CLASSES, "fps": FPS, "height": height, "width": None, "crop": None,
        "clip_len": CLIP, "pad": PAD, "threshold": 0.0, "nms_window": NMS, "batch_size": 2,
        "entities_per_event": 3, "entity_slots": 4, "entities": None, "precision": "off"})
    return directory


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("uglspot spot: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.slow
def test_live_events_from_a_pipe_at_real_time_equal_offline_events_of_the_same_file(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    video = tmp_path / "match.mp4"
    write_video(video, render(43, EVENTS, seed=3))
    model = spotter_dir(tmp_path / "model")
    assert main(["spot", str(video), "--model", str(model), "--out", str(tmp_path / "off"), "--device", "cpu",
                 "--no-plot"]) == 0
    offline = json.loads((tmp_path / "off" / "match" / "events.json").read_text())["events"]

    pusher = Pusher(video, fifo(tmp_path / "feed"), realtime=True)
    pusher.start()
    began = time.monotonic()
    assert main(["spot", "--live", str(tmp_path / "feed"), "--model", str(model), "--out",
                 str(tmp_path / "live.jsonl"), "--device", "cpu"]) == 0
    elapsed = time.monotonic() - began
    pusher.join(5)
    assert pusher.error is None and pusher.sent == 43
    live = read_lines(tmp_path / "live.jsonl")
    assert len(offline) > 20  # threshold 0: every NMS survivor of both classes
    assert [(e["frame"], e["label"]) for e in live] == [(e["frame"], e["label"]) for e in offline]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(live, offline)) <= 1e-4
    assert [e["frame"] for e in live] == sorted(e["frame"] for e in live)  # in frame order
    assert all(e["time"] == round(e["frame"] / FPS, 3) and e["entity"] is None for e in live)
    # the pusher paced the 4.3 s match; every event waited at most for its windows and NMS to be final
    assert elapsed >= 0.8 * 43 / FPS
    bound = (full_lookahead(CLIP, PAD, NMS) + 1) / FPS + 1.5
    assert all(0 <= e["latency"] <= bound for e in live), [e["latency"] for e in live]
    err = capsys.readouterr().err
    assert f"live {tmp_path / 'feed'}: 43 frames (4.3 s of video), {len(live)} events -> {tmp_path / 'live.jsonl'}; " \
           "latency median" in err


def test_entity_model_replayed_frame_by_frame_equals_offline_with_the_entities_it_attended(tmp_path: Path) -> None:
    """The decisions `--live` makes, for a model with entities (the lookahead benchmark's UGL path)."""
    video = Video("match", 43, FPS, [])
    write_video(tmp_path / "videos" / "match.mp4", render(43, EVENTS, seed=3))
    write_entities(store_path(tmp_path / "entities", "match"), video)
    spotter = load_spotter(spotter_dir(tmp_path / "model", "ugl_rny002", num_entity_classes=2))
    from uglspot.data.dataset import EntityWindows, VideoFrames

    frames = VideoFrames(tmp_path / "videos", {"match": FPS}, HEIGHT)
    entities = EntityWindows(tmp_path / "entities", 4)
    offline = next(spot_videos(spotter, [video], frames, entities)).events
    live = LiveSpotter(window_scorer(spotter), CLASSES, CLIP, PAD, 0.0, NMS, None, None,
                       entities.vocabulary("match"), 3)
    events = replay(live, 43, lambda a, n: frames.read("match", a, n), lambda a, n: entities.window("match", a, n))
    assert len(offline) > 20 and any(e.entities for e in offline)
    assert [(e.frame, e.label) for e in events] == [(e.frame, e.label) for e in offline]
    assert max(abs(a.score - b.score) for a, b in zip(events, offline)) <= 1e-4
    assert [[(x.cls, x.box) for x in e.entities] for e in events] == [[(x.cls, x.box) for x in e.entities]
                                                                      for e in offline]


def test_a_lookahead_bounds_every_decision_and_a_full_one_changes_nothing(tmp_path: Path) -> None:
    write_video(tmp_path / "videos" / "match.mp4", render(60, EVENTS, seed=5))
    spotter = load_spotter(spotter_dir(tmp_path / "model"))
    from uglspot.data.dataset import VideoFrames

    frames = VideoFrames(tmp_path / "videos", {"match": FPS}, HEIGHT)
    offline = next(spot_videos(spotter, [Video("match", 60, FPS, [])], frames)).events
    outcomes = {}
    for lookahead in (0, 2, 5, full_lookahead(CLIP, PAD, NMS)):
        live = LiveSpotter(window_scorer(spotter), CLASSES, CLIP, PAD, 0.0, NMS, lookahead)
        events = replay(live, 60, lambda a, n: frames.read("match", a, n))
        # decided no later than `lookahead` frames after its own frame arrived (or at the end, -1)
        assert all(e.decided_at == -1 and e.frame >= 60 - lookahead - 1 or e.frame <= e.decided_at <= e.frame +
                   lookahead for e in events), lookahead
        outcomes[lookahead] = [(e.frame, e.label, round(e.score, 5)) for e in events]
    full = full_lookahead(CLIP, PAD, NMS)
    assert outcomes[full] == [(e.frame, e.label, round(e.score, 5)) for e in offline]
    assert outcomes[0] != outcomes[full]  # no future context: other scores


def test_live_over_loopback_tcp_with_a_short_lookahead(tmp_path: Path) -> None:
    video = tmp_path / "match.mp4"
    write_video(video, render(30, EVENTS, seed=3))
    model = spotter_dir(tmp_path / "model")
    url = f"tcp://127.0.0.1:{free_port()}"
    pusher = Pusher(video, url, realtime=True)
    pusher.start()  # connects once spot listens
    code = main(["spot", "--live", url + "?listen=1", "--model", str(model), "--out", str(tmp_path / "e.jsonl"),
                 "--lookahead", "0.3", "--device", "cpu"])
    pusher.join(5)
    assert code == 0, pusher.error
    events = read_lines(tmp_path / "e.jsonl")
    assert pusher.error is None and events and {e["frame"] for e in events} <= set(range(30))
    assert all(e["latency"] <= 0.3 + 1.0 for e in events), [e["latency"] for e in events]


def test_a_stalled_stream_ends_with_one_line_and_keeps_the_events_so_far(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    video = tmp_path / "match.mp4"
    write_video(video, render(40, EVENTS, seed=3))
    pusher = Pusher(video, fifo(tmp_path / "feed"), realtime=False, stop_after=24, hold=4)
    pusher.start()
    began = time.monotonic()
    code = main(["spot", "--live", str(tmp_path / "feed"), "--model", str(spotter_dir(tmp_path / "model")),
                 "--out", str(tmp_path / "e.jsonl"), "--stall-timeout", "1", "--device", "cpu"])
    assert code == 1 and time.monotonic() - began < 4
    line = one_line_error(capsys.readouterr().err)
    assert "the stream stalled: no frame for 1 s after target frame" in line and "--stall-timeout" in line
    assert read_lines(tmp_path / "e.jsonl")  # what was decided before the stall is there
    pusher.join(6)


def test_a_restarted_stream_ends_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    video = tmp_path / "match.mp4"
    write_video(video, render(24, EVENTS, seed=3))
    pusher = Pusher(video, fifo(tmp_path / "feed"), realtime=False, times=2)
    pusher.start()
    code = main(["spot", "--live", str(tmp_path / "feed"), "--model", str(spotter_dir(tmp_path / "model")),
                 "--out", str(tmp_path / "e.jsonl"), "--device", "cpu"])
    pusher.join(5)
    assert code == 1
    assert "the stream restarted (its timestamps went back" in one_line_error(capsys.readouterr().err)
    assert max(e["frame"] for e in read_lines(tmp_path / "e.jsonl")) < 24


def test_corrupt_packets_end_cleanly_never_a_hang(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_ts(tmp_path / "match.ts", render(40, EVENTS, seed=3), FPS).read_bytes()
    rng = np.random.default_rng(0)
    broken = data[:len(data) // 2] + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes() + data[len(data) // 2:]
    feed = fifo(tmp_path / "feed")

    def push() -> None:
        with open(feed, "wb") as pipe:
            pipe.write(broken)

    import threading

    threading.Thread(target=push, daemon=True).start()
    began = time.monotonic()
    code = main(["spot", "--live", feed, "--model", str(spotter_dir(tmp_path / "model")), "--out",
                 str(tmp_path / "e.jsonl"), "--stall-timeout", "3", "--device", "cpu"])
    assert time.monotonic() - began < 20
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err
    if code == 1:
        assert "damaged video data" in one_line_error(err)
    assert read_lines(tmp_path / "e.jsonl")  # the frames before the damage were spotted


@pytest.mark.parametrize("case", ["refused", "text", "missing", "directory"])
def test_sources_that_are_not_streams_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, case) -> None:
    source = {"refused": f"tcp://127.0.0.1:{free_port()}", "text": str(tmp_path / "notes.txt"),
              "missing": str(tmp_path / "nowhere"), "directory": str(tmp_path)}[case]
    (tmp_path / "notes.txt").write_text("not a video\n" * 2000)
    out = tmp_path / "e.jsonl"
    code = main(["spot", "--live", source, "--model", str(spotter_dir(tmp_path / "model")), "--out", str(out),
                 "--stall-timeout", "5", "--device", "cpu"])
    line = one_line_error(capsys.readouterr().err)
    assert code == 1 and f"--live {source}: " in line and not out.exists()
    expected = {"refused": "cannot open it as a video stream", "text": "cannot open it as a video stream",
                "missing": "no such file, named pipe or URL", "directory": "is a directory"}[case]
    assert expected in line


def test_what_live_refuses(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = spotter_dir(tmp_path / "model")
    (tmp_path / "had.jsonl").write_text("mine\n")
    base = ["spot", "--live", str(tmp_path / "x"), "--model", str(model), "--device", "cpu"]
    assert main(base + ["--out", str(tmp_path / "had.jsonl")]) == 1
    assert "already exists" in one_line_error(capsys.readouterr().err)
    assert (tmp_path / "had.jsonl").read_text() == "mine\n"
    assert main(base + [str(tmp_path / "a.mp4")]) == 1
    assert "drop the video files" in one_line_error(capsys.readouterr().err)
    assert main(base + ["--entities", str(tmp_path)]) == 1
    assert "--entities cannot be used with --live: entity stores belong to recorded videos" in \
        one_line_error(capsys.readouterr().err)
    assert main(base + ["--runtime", "onnx"]) == 1
    assert "--live runs PyTorch models" in one_line_error(capsys.readouterr().err)
    ugl = spotter_dir(tmp_path / "ugl", "ugl_rny002", num_entity_classes=2)
    assert main(["spot", "--live", str(tmp_path / "x"), "--model", str(ugl), "--device", "cpu"]) == 1
    assert "this model uses scene entities; with --live they are detected on the frames as they arrive: add " \
           "--detector NAME (grounding-dino, owlv2)" in one_line_error(capsys.readouterr().err)
    assert main(["spot", "--model", str(model), "--out", str(tmp_path / "o")]) == 1
    assert "give the videos to spot and --out OUT_DIR" in one_line_error(capsys.readouterr().err)


@pytest.mark.slow
def test_ctrl_c_keeps_every_event_written(tmp_path: Path) -> None:
    video = tmp_path / "match.mp4"
    write_video(video, render(80, EVENTS, seed=3))
    model = spotter_dir(tmp_path / "model")
    feed, out = fifo(tmp_path / "feed"), tmp_path / "e.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    # A shell starts background jobs with SIGINT ignored, and the child would inherit that (the
    # suite run with `make test &` then saw spot finish the stream and exit 0): Ctrl-C's default here.
    child = subprocess.Popen([sys.executable, "-m", "uglspot", "spot", "--live", feed, "--model", str(model),
                              "--out", str(out), "--device", "cpu"], env=env, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pusher = Pusher(video, feed, realtime=True)
    pusher.start()
    deadline = time.monotonic() + 60
    while not (out.is_file() and out.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "uglspot spot: interrupted; every event final by then was written" in err
    events = read_lines(out)  # whole lines only
    assert len(events) >= 3 and max(e["frame"] for e in events) < 79


@pytest.mark.slow
def test_standard_input_to_standard_output(tmp_path: Path) -> None:
    """`--live -` reads the stream from standard input; without --out each event is a line on standard output."""
    data = write_ts(tmp_path / "match.ts", render(30, EVENTS, seed=3), FPS).read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "uglspot", "spot", "--live", "-", "--model",
                           str(spotter_dir(tmp_path / "model")), "--device", "cpu"],
                          input=data, capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert events and [e["frame"] for e in events] == sorted(e["frame"] for e in events)
    assert "live -: 30 frames (3.0 s of video)" in done.stderr.decode()


@pytest.mark.slow
def test_memory_stays_flat_over_an_hour_of_video(tmp_path: Path) -> None:
    """An hour at 1 fps (3,600 frames of 48x48: 25 MB if every frame were kept) pushed as fast as it is read."""
    from uglspot.app.live import spot_live

    fps, frames = 1, 3600
    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 255, (50, 48, 48, 3), dtype=np.uint8)
    video = write_ts(tmp_path / "hour.ts", pattern[np.arange(frames) % 50], fps, gop=25)
    model = spotter_dir(tmp_path / "model", height=48)
    settings = json.loads((model / "inference.json").read_text())
    write_json_atomic(model / "inference.json", {**settings, "fps": fps, "threshold": 0.5})
    pusher = Pusher(video, fifo(tmp_path / "feed"), realtime=False)
    pusher.start()
    resident: dict[int, int] = {}

    def sample(index: int) -> None:
        if index in (300, frames - 1):
            resident[index] = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    began = time.monotonic()
    with open(os.devnull, "w") as sink:
        outcome = spot_live(str(tmp_path / "feed"), model, None, sink, device="cpu", on_frame=sample)
    assert outcome.error is None and outcome.frames == frames and time.monotonic() - began < 240
    growth = resident[frames - 1] - resident[300]
    print(f"resident memory: {resident[300] / 2**20:.1f} MiB at frame 300, {growth / 2**20:+.1f} MiB at the end")
    assert growth < 8 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB over an hour of video"
