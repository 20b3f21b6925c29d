"""The entity branch must keep learning: a short seeded run of the demo's
pipeline on a small synthetic slice, where UGL's card AP must beat the
global-only model's by a margin.

The slice is card-rich (every incident a foul) and tiny (64×36 frames, three
1-minute training matches, 80 steps), so both variants train through the
real engine, on real H.264 videos and entity stores, in CI's time. At this
size a card is a pixel or two: the global model has little to see, while the
simulated detector still reports the card box (with its crowd false
positives). If the entity path breaks (stores not read, boxes misaligned, a
selection that cannot learn, features dropped), UGL falls to the global
model's level and this test fails.

Margins measured on seeds 0-4 with the product's UGL recipe (the isolated
global head; each class from the head a learned gate picks, the fused head
and the entity classifier read as one ensemble: ``head_mix:
pick_ensemble``), the packed entity branch, the channels-last GSM gate and
the fused AdamW (UGL minus global-only, mean AP of Yellow and Red card at
δ = 2, points; docs/demo.md): +14.7, +50.2, +6.0, +9.0, +28.2. With the gate's plain pick
(``head_mix: pick``, the recipe before) the same weights gave +10.8, +41.9,
+5.0, +10.0, +35.4, and on seeds 5 and 6 +35.4 and +9.6; so the threshold
is 3 points. Seed 2's test match holds 6 card events, so its
margin rests on a handful of detections. Before the gate and the fused
optimiser (other rounding) the five were +7.8, +25.9, +12.5, +14.9, +12.8
and, on seeds 5 and 6, +13.4 and +28.8; before the entity branch was packed
+21.3, +42.6, +6.1, +24.3, +7.9, +20.8 and +23.4: at 80 steps the margin
moves with rounding, hence a threshold below the smallest. With the entity path broken (every
entity token zeroed in the model, seeds 0 and 2, measured before the gate
and the fused optimiser) the margin is exactly 0: the gate
then gives the cards to the global head, which is the global-only model.
After 80 steps the gate's weights are still near uniform (0.2-0.66), so
on some seeds it gives the card classes to a weaker head than the fused
one. With the earlier recipe (the paper's fusion, the entity classifier's
logits averaged in) the five were +56.2, +34.8, +13.5, +35.7, +13.3, and
the threshold was 10 points. On all seven seeds UGL's backbone and global head were the
global-only run's weights bit for bit (the second test), with today's code as before it. The test runs seed 0, whose
result is reproducible bit for bit on one machine (the synthetic videos
encode to the same bytes every run, and on two or more cores each variant
always trains and spots on one thread of its own).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from uglspot.app.demo import CARD_CLASSES, QUICK, class_group_ap, run_demo

# Every incident is a foul (a card at most of them); everything else is the quick profile's recipe.
SLICE = replace(QUICK, name="learning-test", width=64, height=36,
                matches={"train": 3, "val": 1, "test": 1}, minutes={"train": 1.0, "val": 0.5, "test": 1.5},
                incidents={"foul": 1.0}, clip_len=16, batch_size=8, epochs=2, epoch_frames=5120, lr=3e-3,
                foreground=0.75, global_from_ugl=False)  # two trainings: the second test compares their weights
MARGIN = 0.03  # see the module docstring: seven measured margins, and 0 with the entity path broken


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    """Both variants trained and spotted on the slice, once for the module: (folder, outcome)."""
    import torch

    root = tmp_path_factory.mktemp("learning") / "slice"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        outcome = run_demo(root, replace(SLICE, seed=0), report=False)
    finally:
        torch.set_num_threads(threads)
    return root, outcome


@pytest.mark.slow
def test_entity_branch_beats_global_only_on_cards(slice_run):
    _, outcome = slice_run
    assert outcome.counts["Yellow card"] + outcome.counts["Red card"] >= 5
    base = class_group_ap(outcome.results["e2e_rny002"], CARD_CLASSES)
    ugl = class_group_ap(outcome.results["ugl_rny002"], CARD_CLASSES)
    assert ugl - base >= MARGIN, f"UGL cards {ugl:.3f} vs global-only {base:.3f}: the entity branch stopped learning"
    kept = outcome.kept["ugl_rny002"]
    assert kept.true_total > 0 and kept.true_share >= 0.5  # it keeps the real cards


def _trained_weights(root, variant: str) -> dict:
    from safetensors.torch import load_file

    found = sorted((root / "runs" / variant / "checkpoints").glob("last-*/model.safetensors"))
    assert found, f"no checkpoint of {variant}"
    return load_file(found[-1])


@pytest.mark.slow
def test_ugl_keeps_the_global_only_models_scene(slice_run):
    """A recipe that loses the scene fails here: with the fused loss reaching
    the backbone (the paper's fusion, or a global head on a shared
    backbone), the UGL model's backbone and global head are no longer the
    global-only model's, and on the long profile that cost the scene 27-40
    AP points. The recipe's isolated global path is the global-only run's
    weights bit for bit: checked on seeds 0-4 (module docstring)."""
    import torch

    root, _ = slice_run
    base, ugl = _trained_weights(root, "e2e_rny002"), _trained_weights(root, "ugl_rny002")
    renamed = {("global_" + k if k.startswith("head.") else k): v for k, v in base.items()}
    missing = sorted(set(renamed) - set(ugl))
    assert not missing, f"the UGL model has no global path like the global-only model's: {missing[:3]}"
    moved = [k for k, v in renamed.items() if not torch.equal(ugl[k], v)]
    assert not moved, f"the UGL backbone or global head trained differently from the global-only model: {moved[:3]}"
