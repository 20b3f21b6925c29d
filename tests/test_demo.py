"""`uglspot demo --quick`: the whole system, end to end, offline on a CPU."""

from __future__ import annotations

import json

import pytest

from uglspot.cli import main


@pytest.mark.slow
def test_quick_demo_trains_both_variants_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"e2e_rny002", "ugl_rny002"}
    classes = (out / "dataset" / "class.txt").read_text().split("\n")[:-1]
    for variant, result in summary["results"].items():
        assert set(result["mAP"]) == {"1", "2"}
        assert all(0.0 <= v <= 1.0 for v in result["mAP"].values())
        # The printed table is the measured one: its mAP row carries these numbers.
        assert f"{100 * result['mAP']['1']:.1f}" in printed.split("mAP")[-1]
        for video in json.loads((out / "dataset" / "test.json").read_text()):
            events = json.loads((out / "predictions" / variant / video["video"] / "events.json").read_text())
            assert events["video"] == video["video"] and events["num_frames"] == video["num_frames"]
            if variant.startswith("ugl") and events["events"]:
                assert any(e["entities"] for e in events["events"])
    for label in classes:
        assert label in printed
    # One training gives both variants: the global-only run is the UGL run's isolated global path.
    assert summary["global_only_from_ugl"] is True and "train e2e_rny002" not in summary["seconds"]
    for step in ("render", "train ugl_rny002", "derive e2e_rny002", "spot e2e_rny002", "spot ugl_rny002", "total"):
        assert summary["seconds"][step] > 0
    report = (out / "report.html").read_text()
    assert report.count('class="ap-row"') == len(classes) and 'class="gallery-item"' in report
    # The quick profile's numbers are noise, and both the terminal and the report say so, with the budget.
    assert summary["smoke_test"] is True and summary["steps"] == 20
    for text in (printed, report):
        assert "Smoke test: 20 steps" in text and "trained 20 steps on 1,280 frames" in text
        assert "isolated backbone and global head, trained once" in text
    # The heads the UGL variant's validation chose: in summary.json, the run's inference.json and the notes.
    heads = summary["ugl_heads"]
    assert set(heads) == set(classes) and set(heads.values()) <= {"global", "fused"}
    chosen = json.loads(next((out / "runs" / "ugl_rny002" / "checkpoints").glob("best-*/inference.json")).read_text())
    assert chosen["head_choice"] == heads
    for text in (printed, report):
        assert "The UGL variant reads " in text and "the heads its validation matches chose" in text
    # A second run never overwrites the first.
    assert main(["demo", "--quick", "--out", str(out)]) == 1


def test_the_demo_trains_and_spots_where_device_says(tmp_path):
    from dataclasses import replace

    import torch

    from uglspot.app.demo import DEFAULT, _train_config
    from uglspot.engine.infer import inference_dtype
    from uglspot.engine.runtime import cpu_has_bf16

    on_cpu = _train_config(tmp_path, "ugl_rny002", DEFAULT)
    assert on_cpu.train.device == "cpu" and on_cpu.train.amp == ("bf16" if cpu_has_bf16() else "off")
    on_gpu = _train_config(tmp_path, "ugl_rny002", replace(DEFAULT, device="cuda:0"))
    # On a GPU the engine's own autocast choice (bf16 where supported), and the same data and recipe.
    assert on_gpu.train.device == "cuda:0" and on_gpu.train.amp == "auto"
    assert on_gpu.data == on_cpu.data and on_gpu.model == on_cpu.model and on_gpu.optim == on_cpu.optim
    assert _train_config(tmp_path, "e2e_rny002", replace(DEFAULT, device="cuda", bf16=False)).train.amp == "off"
    # spotting autocasts as training did: the demo's models carry train.amp in inference.json
    assert inference_dtype(_train_config(tmp_path, "ugl_rny002", replace(DEFAULT, bf16=False)).train.amp,
                           torch.device("cpu")) is None
    assert inference_dtype(on_cpu.train.amp, torch.device("cpu")) == (torch.bfloat16 if cpu_has_bf16() else None)


def test_a_gpu_demo_without_cuda_says_so_before_anything_is_written(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--device", "cuda", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "--device=cuda" in error and "CUDA is not available" in error
    assert not out.exists()


def _tiny_profile(**changes):
    from dataclasses import replace

    from uglspot.app.demo import QUICK

    return replace(QUICK, width=64, height=36, matches={"train": 1, "val": 1, "test": 3},
                   minutes={"train": 0.25, "val": 0.25, "test": 0.25}, clip_len=8, batch_size=2, epochs=1,
                   epoch_frames=64, **changes)


@pytest.mark.slow
def test_side_by_side_spots_every_video_as_one_process_alone_would(tmp_path):
    """Two processes train both variants and share the spotting of their
    test videos (a video goes to whichever is free): each variant's
    predictions must still be those of training and spotting it alone on
    one thread."""
    from dataclasses import replace

    import torch

    from uglspot.app.demo import VARIANTS, run_demo

    tiny = _tiny_profile(global_from_ugl=False)  # both variants trained, each as a job of the pool
    threads = torch.get_num_threads()
    try:
        shared = run_demo(tmp_path / "shared", tiny, report=False, threads=2)
        alone = run_demo(tmp_path / "alone", replace(tiny, side_by_side=False), report=False, threads=1)
    finally:
        torch.set_num_threads(threads)
    assert shared.table == alone.table
    for variant in VARIANTS:
        assert shared.seconds[f"spot {variant}"] > 0
        folder = f"predictions/{variant}"
        written = sorted(p.relative_to(tmp_path / "alone") for p in (tmp_path / "alone" / folder).rglob("*.json"))
        assert len(written) == 3 + 1  # each test video's events.json and predictions.json
        for path in written:
            assert (tmp_path / "shared" / path).read_bytes() == (tmp_path / "alone" / path).read_bytes(), path
    assert shared.kept["ugl_rny002"] == alone.kept["ugl_rny002"] and shared.kept["ugl_rny002"].true_total > 0


@pytest.mark.slow
def test_the_global_only_run_taken_from_the_ugl_run_is_the_one_training_it_alone_gives(tmp_path):
    """The demo trains the UGL variant once and writes the global-only run
    from its isolated backbone and global head: its weights, config and
    class thresholds (its own validation pass) must be, byte for byte,
    those of training the global-only variant alone with the same seed on
    as many threads. A recipe whose entity branch reaches the backbone, a
    wrong key mapping, or thresholds copied from the UGL run fail here."""
    from dataclasses import replace

    import torch
    from safetensors.torch import load_file

    from uglspot.app.demo import GLOBAL, _train_config, run_demo
    from uglspot.engine.infer import model_directory
    from uglspot.engine.train import train

    tiny = _tiny_profile()
    threads = torch.get_num_threads()
    try:
        outcome = run_demo(tmp_path / "demo", tiny, report=False, threads=2)
        train(replace(_train_config(tmp_path / "demo", GLOBAL, tiny), out=str(tmp_path / "alone")))
    finally:
        torch.set_num_threads(threads)
    assert outcome.seconds[f"derive {GLOBAL}"] > 0 and f"train {GLOBAL}" not in outcome.seconds
    derived, trained = model_directory(tmp_path / "demo" / "runs" / GLOBAL), model_directory(tmp_path / "alone")
    assert derived.name == trained.name  # the same epoch and step
    for name in ("config.json", "inference.json"):
        assert (derived / name).read_bytes() == (trained / name).read_bytes(), name
    mine, theirs = (load_file(folder / "model.safetensors") for folder in (derived, trained))
    assert mine.keys() == theirs.keys()
    differ = [k for k, v in theirs.items() if not torch.equal(mine[k], v)]  # (the header's key order may differ)
    assert not differ, f"the derived weights differ from the trained ones: {differ[:3]}"
    assert json.loads((trained / "inference.json").read_text())["class_thresholds"]  # validation chose some
