"""README "Your own videos", run as written: the bash block's commands, one
after the other, in a fresh folder (a command failing fails the walk), then
what each step should have left behind."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from uglspot.app.train import plan_own_videos
from uglspot.cli import main
from uglspot.errors import UserError

README = Path(__file__).resolve().parents[1] / "README.md"


def walk() -> list[list[str]]:
    section = README.read_text(encoding="utf-8").split("## Your own videos", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("uglspot ")]


@pytest.mark.slow
def test_the_readme_walk_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    commands = walk()
    assert [c[0] for c in commands] == ["synth", "stats", "train", "spot", "eval", "clips"]
    for argv in commands:
        assert main(argv) == 0, argv
    captured = capsys.readouterr()
    saved = yaml.safe_load((tmp_path / "runs/mine/config.yaml").read_text())
    assert saved["model"]["name"] == "e2e_rny002" and saved["data"]["height"] == 72
    assert saved["data"]["val_split"] == "val" and saved["train"]["epochs"] == 2
    for said in ("model e2e_rny002 (global-only): no --entities given", "per epoch on this machine",
                 "training videos"):
        assert said in captured.err, said
    events = json.loads((tmp_path / "spotted/test_000/events.json").read_text())
    assert events["video"] == "test_000"
    assert "mAP" in captured.out  # eval frames printed its table
    clips = json.loads((tmp_path / "highlights/clips.json").read_text())
    assert sum(len(c["events"]) for c in clips["clips"]) == len(events["events"])  # every event is in a clip
    assert (tmp_path / "highlights/reel.mp4").is_file() == bool(events["events"])


def _labels(root: Path, height: int = 72, val: bool = True) -> Path:
    (root / "videos").mkdir(parents=True)
    (root / "class.txt").write_text("Goal\nCard\n")
    video = [{"video": "a", "num_frames": 300, "fps": 25, "width": 128, "height": height,
              "events": [{"frame": 10, "label": "Goal"}]}]
    (root / "train.json").write_text(json.dumps(video))
    if val:
        (root / "val.json").write_text(json.dumps(video))
    return root


def test_the_plan_is_sized_to_the_data_and_says_what_it_chose(tmp_path) -> None:
    labels = _labels(tmp_path / "l", height=1080, val=False)
    plan = plan_own_videos(labels, labels / "videos", tmp_path / "run", epochs=3, overrides=["data.clip_len=64"])
    config = plan.config
    assert (config.data.height, config.data.clip_len, config.train.epochs) == (224, 64, 3)  # never upscaled past 224
    assert config.data.val_split is None and config.model.name == "e2e_rny002"
    assert config.train.epoch_frames == max(config.train.batch_size * 64, 300)  # follows --set data.clip_len
    assert config.optim.warmup_epochs < config.train.epochs  # the warm-up never covers the whole run
    text = "\n".join(plan.notes)
    assert "no val.json" in text and "--entities" in text and "1 training videos" in text
    assert plan_own_videos(_labels(tmp_path / "m"), tmp_path / "m" / "videos", tmp_path / "r2").config.data.height == 72


@pytest.mark.parametrize("case, message", [
    ("no-class", "no class.txt in it"),
    ("no-videos", "not a folder"),
    ("ugl-without-stores", "reads the scene's entities: pass --entities"),
])
def test_bad_folders_get_one_line(tmp_path, case, message) -> None:
    labels = _labels(tmp_path / "l")
    videos = labels / "videos"
    if case == "no-class":
        (labels / "class.txt").unlink()
    if case == "no-videos":
        videos = tmp_path / "missing"
    with pytest.raises(UserError, match=message):
        plan_own_videos(labels, videos, tmp_path / "run", model="ugl_rny002" if "ugl" in case else None)


def test_the_command_refuses_mixed_ways(tmp_path, capsys) -> None:
    labels = _labels(tmp_path / "l")
    assert main(["train", "configs/x.yaml", "--labels", str(labels), "--videos", str(labels / "videos"),
                 "--out", str(tmp_path / "r")]) == 1
    assert "drop CONFIG" in capsys.readouterr().err
    assert main(["train", "--labels", str(labels)]) == 1
    assert "needs --videos, --out" in capsys.readouterr().err
