"""The GPU suite (benchmarks/gpu_suite.py) keeps working while no GPU is at
hand: its dry run goes through every section on CPU, its guards turn a
failure or an exhausted budget into one JSON line, and the documented device
command is one it accepts."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_suite  # noqa: E402


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[list[dict], list[dict], int]:
    """The dry run as the entry point runs it: stdout records, --out records, exit status."""
    out = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.stdout, done.stderr[-3000:]
    printed = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is one JSON object
    written = [json.loads(line) for line in out.read_text().splitlines()]
    return printed, written, done.returncode


def find(records: list[dict], section: str, figure: str, **match) -> list[dict]:
    return [r for r in records if r.get("section") == section and r.get("figure") == figure
            and all(r.get(k) == v for k, v in match.items())]


@pytest.mark.slow
def test_dry_run_goes_through_every_section(dry_run) -> None:
    printed, written, status = dry_run
    assert printed == written
    assert status == 0, [r for r in printed if r["figure"] == "suite.error"]
    assert printed[0]["figure"] == "suite.machine" and printed[0]["dry_run"] is True
    summary = printed[-1]
    assert summary["figure"] == "suite.summary"
    assert summary["sections"] == {name: "done" for name in gpu_suite.SECTIONS}
    models = summary["models"]
    for section, figure, mode in [("train", "train_frames_per_s", "eager"), ("infer", "infer_frames_per_s", "eager"),
                                  ("train_compiled", "train_frames_per_s", "compiled"),
                                  ("infer_compiled", "infer_frames_per_s", "compiled")]:
        for model in models:
            rows = find(printed, section, figure, model=model, mode=mode)
            assert rows and all(r["value"] > 0 for r in rows), (section, model)
        assert find(printed, section, "entity_branch_time_ratio", model=models[-1])
    for phase in ("train", "infer"):  # the per-part split of every UGL variant
        for source in ("backbone", "detector"):
            for selection in ("learned", "hard"):
                rows = find(printed, "parts", "part_seconds", model=models[-1], phase=phase, source=source,
                            selection=selection)
                parts = {"backbone", "roi_pooling", "entity_tokens", "selection", "entity_encoder", "fusion", "gru",
                         "other"} | ({"loss"} if phase == "train" else set())
                assert {r["part"] for r in rows} == parts, (phase, source, selection)
                for figure in ("entity_branch_time_ratio", "entity_parts_share"):
                    assert find(printed, "parts", figure, model=models[-1], phase=phase, source=source,
                                selection=selection), (figure, phase, source, selection)
    sizes = gpu_suite.dry_run_sizes()
    assert sorted(r["batch"] for r in find(printed, "infer", "infer_frames_per_s", model=models[-1])) == \
        sorted(sizes.infer_batches)
    best = find(printed, "infer", "infer_best_batch", model=models[-1])[0]["value"]
    assert [r["batch"] for r in find(printed, "infer_compiled", "infer_frames_per_s", model=models[-1])] == [best]
    for detector in ("grounding-dino", "owlv2"):
        for mode in ("wrapper", "bare_forward"):
            assert find(printed, "detectors", "detector_images_per_s", detector=detector, mode=mode)
    assert find(printed, "detectors", "detector_images_per_s", detector="grounding-dino",
                input_size=list(sizes.grounding_dino_small))


@pytest.mark.slow
def test_dry_run_projects_the_spot_stages_to_an_hour(dry_run) -> None:
    printed, _, _ = dry_run
    stages = {stage: find(printed, "spot", f"spot.{stage}")[0]["value"] for stage in ("decode", "detect", "model", "post")}
    hour = find(printed, "spot", "spot.one_hour_projection")[0]
    scale = 60 / hour["measured_minutes"]
    assert hour["stages"] == pytest.approx({k: v * scale for k, v in stages.items()}, rel=1e-3, abs=0.02)
    assert hour["value"] == pytest.approx(sum(hour["stages"].values()), rel=1e-3)
    summary = printed[-1]
    assert summary["targets"]["spot_one_hour_s"]["value"] == hour["value"]
    assert set(summary["targets"]) == set(gpu_suite.TARGETS)


def test_a_failing_section_prints_one_error_line_and_the_suite_goes_on(tmp_path, capsys) -> None:
    suite = gpu_suite.Suite(budget_s=60, out=tmp_path / "out.jsonl")

    def broken() -> None:
        print(json.dumps({"figure": "half_done", "value": 1}))
        raise RuntimeError("CUDA out of memory\nmore detail")

    suite.run("first", 0, broken)
    suite.run("second", 0, lambda: print(json.dumps({"figure": "fine", "value": 2})))
    error = [r for r in suite.records if r["figure"] == "suite.error"]
    assert len(error) == 1 and error[0]["section"] == "first"
    assert error[0]["error"] == "RuntimeError: CUDA out of memory"
    assert error[0]["where"].startswith("test_gpu_suite.py:")
    assert suite.find("first", "half_done") and suite.find("second", "fine")
    assert suite.outcome == {"first": "error", "second": "done"}
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == suite.records
    assert "Traceback" in capsys.readouterr().err


def test_the_budget_skips_what_does_not_fit_and_stops_what_overruns() -> None:
    suite = gpu_suite.Suite(budget_s=3.0, out=None)
    start = time.perf_counter()
    suite.run("slow", 0, lambda: time.sleep(30))
    assert time.perf_counter() - start < 15
    suite.run("later", 5, lambda: pytest.fail("a section that does not fit must not start"))
    assert suite.outcome == {"slow": "stopped", "later": "skipped"}
    assert suite.find("slow", "suite.error")[0]["error"].startswith("time budget ran out")
    assert suite.find("later", "suite.skipped")[0]["needs_s"] == 5


def test_non_json_output_of_a_section_goes_to_stderr(capsys) -> None:
    suite = gpu_suite.Suite(budget_s=60, out=None)
    suite.run("chatty", 0, lambda: print("loading weights...\n" + json.dumps({"figure": "x", "value": 3})))
    captured = capsys.readouterr()
    assert "loading weights..." in captured.err and "loading weights" not in captured.out
    assert [json.loads(line)["figure"] for line in captured.out.splitlines()] == ["x", "suite.section"]


def test_the_documented_device_command_is_one_the_suite_accepts() -> None:
    text = (REPO / "docs" / "performance.md").read_text(encoding="utf-8")
    commands = [line for block in re.findall(r"```\n(.*?)```", text, flags=re.S) for line in block.splitlines()
                if "benchmarks/gpu_suite.py" in line and "--dry-run" not in line]
    assert len(commands) == 1
    command = commands[0]
    assert "PYTHONUNBUFFERED=1" in command and "--no-index" in command and "$OUT/" in command
    assert re.search(r"--find-links wheels|\bwheels/\*\.whl", command)
    args = shlex.split(command.split("benchmarks/gpu_suite.py", 1)[1])
    gpu_suite.build_parser().parse_args(args)
    assert "/wheels/" in (REPO / ".gitignore").read_text().splitlines()
    assert (REPO / "benchmarks" / "gpu_wheels.sh").is_file()
