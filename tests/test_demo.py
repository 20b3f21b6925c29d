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
    for step in ("render", "train e2e_rny002", "train ugl_rny002", "spot ugl_rny002", "total"):
        assert summary["seconds"][step] > 0
    report = (out / "report.html").read_text()
    assert report.count('class="ap-row"') == len(classes) and 'class="gallery-item"' in report
    # A second run never overwrites the first.
    assert main(["demo", "--quick", "--out", str(out)]) == 1
