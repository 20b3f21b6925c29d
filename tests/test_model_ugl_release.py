"""``uglspot import-ugl`` against numbers made by the released UGL code itself.

How the fixture (tests/data/ugl_release/fixture.json, 35 KB) was made: the
release's own code (github.com/phuc16102001/unifying-global-local-feature,
the mirror of Fsoft-AIC's unifying-global-local-feature, commit 6b7092c,
unmodified, outside this repository) was run by
tests/data/ugl_release/make_fixture.py on CPU in fp32 (torch 2.14.1, timm
1.0.31; the only shims: ``.cuda()`` returns the tensor, the GSM's
``torch.cuda.FloatTensor`` zero padding is a CPU tensor, timm 1.x's
ConvNormAct stands for the ConvBnAct class its GSM insertion tests for,
no ImageNet download, a stub for the ``tabulate`` printing module). It built
the release's ``E2EModel.Impl`` (rny002_gsm, gru, clip_len 8, GLIP features,
3 event classes), filled every tensor of its state dict with the recipe of
tests/_ugl_release.py (integer splitmix64 arithmetic, the same on every
machine), and recorded the release's key names and shapes, the config.json
its ``store_config`` writes, the logits of its forward (eval) on the
recipe's clip (2 windows of 8 frames, 64×96) with the GLIP entity file of
the recipe read by the release's own ``load_glip`` (frames with no object,
frames with only class-0 rows, which it skips, and 1 to 9 objects; once with
float32 features and once rounded to float16 as uglspot's stores keep them),
and its ``sigmoid_focal_loss`` as its training epoch calls it. The 47 MB
checkpoint is not committed: the test rebuilds it from the recipe under the
release's key names, so a wrong mapping gives other logits.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import _ugl_release as R
from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.cli import main
from uglspot.data.dataset import EntityWindows
from uglspot.engine.model_folder import load_model, load_model_metadata
from uglspot.entities.batch import EntityBatch
from uglspot.model import create_model
from uglspot.model.loss import focal_loss, weighted_cross_entropy

FIXTURE = json.loads((Path(__file__).parent / "data" / "ugl_release" / "fixture.json").read_text())
TOLERANCE = 1e-4  # max |Δ logit| allowed against the release's own forward


def write_release(directory: Path, state: dict[str, torch.Tensor], **config_changes) -> Path:
    """The release's files: checkpoint_049.pt (a plain state dict) and its config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    ckpt = directory / "checkpoint_049.pt"
    torch.save(state, ckpt)
    (directory / "config.json").write_text(json.dumps({**FIXTURE["config"], **config_changes}))
    return ckpt


@pytest.fixture(scope="module")
def release_state() -> dict[str, torch.Tensor]:
    return R.recipe_state(FIXTURE["keys"])


@pytest.fixture(scope="module")
def imported(tmp_path_factory, release_state):
    """The fixture checkpoint imported by ``uglspot import-ugl``: its model folder."""
    root = tmp_path_factory.mktemp("release")
    ckpt = write_release(root, release_state)
    out = root / "model"
    assert main(["import-ugl", str(ckpt), "--out", str(out)]) == 0
    return out


def entity_batch(rows: torch.Tensor) -> EntityBatch:
    """The fixture's two windows as the release reads the GLIP file: per frame
    the rows of class ≥ 1 in file order, in the first of 50 slots."""
    entities = EntityBatch.empty(len(R.WINDOWS), R.CLIP, R.SLOTS, R.FEAT)
    for b, start in enumerate(R.WINDOWS):
        for t in range(R.CLIP):
            mine = rows[(rows[:, 0] == start + t) & (rows[:, 1] >= 1)]
            entities.mask[b, t, :len(mine)] = True
            entities.feat[b, t, :len(mine)] = mine[:, 6:]
            entities.boxes[b, t, :len(mine)] = mine[:, 2:6]
    return entities


def logits(model, entities: EntityBatch) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(R.recipe_clip(), entities).logits


def test_the_fixture_has_the_release_layout():
    keys = {name: shape for name, shape, _ in FIXTURE["keys"]}
    assert keys["_fuse._obj_fuser.encoder_layers.0.ff_2.linear_1.weight"] == [2048, 368]
    assert keys["_fuse._env_obj_fuser.norm.alpha"] == [368]
    assert keys["_fuse._obj_linear.weight"] == [368, 256]
    assert keys["_pred_fine._fc_out._fc_out.weight"] == [R.K + 1, 2 * 368]
    assert "_features.s1.b1.conv1.gsm.conv3D.weight" in keys and "_fuse._obj_env_norm.bias" in keys
    assert FIXTURE["config"]["glip_feature"] is True and FIXTURE["config"]["label_type"] == "one_hot"
    # the recipe's entity file has frames without objects, the fixture's logits are not flat
    assert 0 in R.OBJECTS and max(R.OBJECTS) > 1 and any(R.OBJECTS[f] == 0 for f in R.CLASS_ZERO_ROWS)
    assert torch.tensor(FIXTURE["logits"]["float"]).std() > 0.1


def test_imported_release_checkpoint_gives_the_release_logits(imported):
    model = load_model(imported)
    assert model.config.name == "uglr_rny002" and model.config.entity_layers == "release"
    assert model.config.clip_len == R.CLIP and model.config.num_classes == R.K
    assert model.config.loss == "focal" and (model.config.focal_alpha, model.config.focal_gamma) == (0.25, 2.0)
    assert load_model_metadata(imported)["dataset"] == "finediving"
    got = logits(model, entity_batch(R.recipe_glip_rows(half=False)))
    want = torch.tensor(FIXTURE["logits"]["float"])
    assert got.shape == want.shape == (len(R.WINDOWS), R.CLIP, R.K + 1)
    delta = (got - want).abs().max().item()
    print(f"max |Δ logit| against the release: {delta:.2e}")
    assert delta <= TOLERANCE


def test_release_glip_file_through_glip_import_gives_the_release_logits(imported, tmp_path):
    """The release's GLIP file → `uglspot detect --detector glip-import` → the
    store's windows → the imported model: the release's logits on the same
    features rounded to float16, as the store keeps them."""
    glip = tmp_path / "video.pt"
    torch.save(R.recipe_glip_rows(half=False), glip)
    stores = tmp_path / "stores"
    assert main(["detect", str(glip), "--detector", "glip-import", "--fps", "25", "--out", str(stores)]) == 0
    windows = EntityWindows(stores, R.SLOTS)
    parts = [windows.window("video", start, R.CLIP) for start in R.WINDOWS]
    entities = EntityBatch(**{name: torch.stack([p[name] for p in parts]) for name in parts[0]})
    got = logits(load_model(imported), entities)
    delta = (got - torch.tensor(FIXTURE["logits"]["half"])).abs().max().item()
    assert delta <= TOLERANCE, delta


def swapped(state: dict[str, torch.Tensor], first: str, second: str) -> dict[str, torch.Tensor]:
    """``state`` with the tensors under prefixes ``first`` and ``second`` exchanged."""
    out = dict(state)
    for key in state:
        if key.startswith(first):
            other = second + key[len(first):]
            out[key], out[other] = state[other], state[key]
    return out


@pytest.mark.parametrize("first, second", [
    ("_fuse._obj_fuser.encoder_layers.0.ff_1.", "_fuse._obj_fuser.encoder_layers.0.ff_2."),
    ("_fuse._env_obj_fuser.encoder_layers.0.norm_1.", "_fuse._env_obj_fuser.encoder_layers.0.norm_2."),
    ("_fuse._obj_fuser.", "_fuse._env_obj_fuser."),
    ("_fuse._env_norm.", "_fuse._obj_env_norm."),
])
def test_a_wrong_mapping_gives_other_logits(tmp_path, release_state, first, second):
    """The parity test can fail: the checkpoint with two blocks of the same
    shape exchanged (as a wrong key mapping would) misses by far more than
    the tolerance."""
    ckpt = write_release(tmp_path, swapped(release_state, first, second))
    assert main(["import-ugl", str(ckpt), "--out", str(tmp_path / "m")]) == 0
    got = logits(load_model(tmp_path / "m"), entity_batch(R.recipe_glip_rows(half=False)))
    assert (got - torch.tensor(FIXTURE["logits"]["float"])).abs().max() > 10 * TOLERANCE


def test_each_quirk_of_the_release_matters(imported):
    """Without the empty slots' bias in f_ent, or without undoing the GSM
    channel order, or without the entities, the logits miss."""
    model = load_model(imported)
    entities = entity_batch(R.recipe_glip_rows(half=False))
    want = torch.tensor(FIXTURE["logits"]["float"])
    no_bias = copy.deepcopy(model)
    no_bias.aam.slots = 0  # f_ent = mean of the kept outputs only
    assert (logits(no_bias, entities) - want).abs().max() > 10 * TOLERANCE
    natural = copy.deepcopy(model)
    with torch.no_grad():  # the release's conv weights as they are, without the channel-order fix
        conv = natural.backbone.net.s1.b1.conv1.inner.conv
        conv.weight.copy_(R.recipe_weight("_features.s1.b1.conv1.net.conv.weight", tuple(conv.weight.shape),
                                          "torch.float32"))
    assert (logits(natural, entities) - want).abs().max() > 100 * TOLERANCE
    assert (logits(model, EntityBatch.empty(len(R.WINDOWS), R.CLIP, R.SLOTS, R.FEAT)) - want).abs().max() > 0.01


@pytest.mark.parametrize("case", FIXTURE["focal_loss"], ids=lambda c: f"alpha{c['alpha']}-gamma{c['gamma']}")
def test_release_focal_loss_is_uglspot_focal_loss(case):
    """The release's sigmoid_focal_loss (summed, divided by the frames) is
    uglspot's focal loss for the same γ and α (a negative α: none), so the
    uglr_* variants need no loss of their own."""
    loss_logits = R.recipe_tensor("loss logits", (2 * R.CLIP, R.K + 1), -4.0, 4.0)
    labels = torch.from_numpy((R.recipe_uniform("loss labels", 2 * R.CLIP) * (R.K + 1)).astype("int64"))
    targets = F.one_hot(labels, R.K + 1).float()
    alpha = case["alpha"] if case["alpha"] >= 0 else None
    ours = focal_loss(loss_logits.view(2, R.CLIP, -1), targets.view(2, R.CLIP, -1), case["gamma"], alpha)
    assert abs(ours.item() - case["loss"]) <= 1e-6 * abs(case["loss"])


def test_release_cross_entropy_is_ce_average_weights():
    """With label_type integer the release trains ``F.cross_entropy(logits,
    class indices, weight=[1, 5, ...])``: PyTorch's weighted mean, which
    divides by the frames' weights, not by the frames; uglspot's ``ce`` gives
    it with ``ce_average: weights`` (the frame mean differs)."""
    loss_logits = R.recipe_tensor("loss logits", (2 * R.CLIP, R.K + 1), -4.0, 4.0)
    labels = torch.from_numpy((R.recipe_uniform("loss labels", 2 * R.CLIP) * (R.K + 1)).astype("int64"))
    release = F.cross_entropy(loss_logits, labels, weight=torch.tensor([1.0] + [5.0] * R.K))
    targets = F.one_hot(labels, R.K + 1).float().view(2, R.CLIP, -1)
    ours = weighted_cross_entropy(loss_logits.view(2, R.CLIP, -1), targets, 5.0, average="weights")
    torch.testing.assert_close(ours, release)
    assert abs(weighted_cross_entropy(loss_logits.view(2, R.CLIP, -1), targets, 5.0) - release) > 0.1


@pytest.mark.parametrize("mixup, average", [(False, "weights"), (True, "frames")])
def test_release_without_glip_and_integer_labels_becomes_e2e_with_cross_entropy(tmp_path, release_state, mixup,
                                                                                 average):
    state = {k: v for k, v in release_state.items() if not k.startswith("_fuse.")}
    ckpt = write_release(tmp_path, state, glip_feature=False, label_type="integer", mixup=mixup)
    classes = tmp_path / "class.txt"
    classes.write_text("a\nb\nc\n")
    assert main(["import-ugl", str(ckpt), "--out", str(tmp_path / "m"), "--classes", str(classes)]) == 0
    model = load_model(tmp_path / "m")
    assert model.config.name == "e2e_rny002" and model.config.loss == "ce" and not model.config.use_entities
    assert model.config.ce_average == average and model.config.fg_weight == 5.0
    settings = json.loads((tmp_path / "m" / "inference.json").read_text())
    assert settings["classes"] == ["a", "b", "c"] and settings["entities"] is None


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"_fuse._obj_fuser.encoder_layers.1.norm_1.alpha": torch.ones(368)}),
     "key _fuse._obj_fuser.encoder_layers.1.norm_1.alpha has no place"),
    (lambda s: s.pop("_fuse._env_obj_fuser.encoder_layers.0.ff_2.linear_1.bias"),
     "key _fuse._env_obj_fuser.encoder_layers.0.ff_2.linear_1.bias is missing"),
    (lambda s: s.pop("_features.s2.b1.conv1.gsm.bn.running_mean"),
     "key _features.s2.b1.conv1.gsm.bn.running_mean is missing"),
    (lambda s: s.update({"_fuse._obj_linear.weight": torch.zeros(368, 255)}), "has shape (368, 255)"),
    (lambda s: s.update({"hook": print}), "refuses"),
])
def test_import_names_the_key_that_does_not_fit(tmp_path, capsys, release_state, change, message):
    state = dict(release_state)
    change(state)
    ckpt = write_release(tmp_path, state)
    assert main(["import-ugl", str(ckpt), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_import_takes_data_parallel_keys_and_drops_the_unused_norm(tmp_path, release_state):
    state = {"module." + k: v for k, v in release_state.items() if not k.startswith("_fuse._obj_env_norm.")}
    ckpt = write_release(tmp_path, state)
    assert main(["import-ugl", str(ckpt), "--out", str(tmp_path / "m")]) == 0


@pytest.mark.parametrize("config_changes, args, message", [
    ({"feature_arch": "rny002_tsm"}, [], "TSM shifts in place"),
    ({"temporal_arch": "former"}, [], "only the release's 1-layer"),
    ({"label_type": "one-hot"}, [], "expected one_hot or integer"),
    ({"num_classes": 4}, [], "head.fc.weight has shape (4, 736), the model expects (5, 736)"),
    ({}, ["--classes", "CLASSES"], "2 classes but"),
])
def test_import_refuses_what_it_cannot_reproduce(tmp_path, capsys, release_state, config_changes, args, message):
    ckpt = write_release(tmp_path, release_state, **config_changes)
    (tmp_path / "class.txt").write_text("a\nb\n")
    args = [str(tmp_path / "class.txt") if a == "CLASSES" else a for a in args]
    assert main(["import-ugl", str(ckpt), "--out", str(tmp_path / "m"), *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_import_never_overwrites_without_asking(tmp_path, capsys, release_state):
    ckpt = write_release(tmp_path, release_state)
    out = tmp_path / "m"
    assert main(["import-ugl", str(ckpt), "--out", str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["import-ugl", str(ckpt), "--out", str(out)]) == 1
    assert "already holds a model" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert main(["import-ugl", str(ckpt), "--out", str(out), "--overwrite"]) == 0


@pytest.fixture(scope="module")
def synthetic_import(tmp_path_factory, release_state):
    """A synthetic dataset (one short match per split) and a release
    checkpoint for its classes imported with its class.txt: (data, model, names)."""
    from uglspot.data.labels import read_class_list

    root = tmp_path_factory.mktemp("synthetic")
    data = root / "data"
    assert main(["synth", "--out", str(data), "--splits", "1,1,1", "--minutes", "0.1", "--width", "64",
                 "--height", "36", "--workers", "1"]) == 0
    names = read_class_list(data / "class.txt")
    K = len(names)
    head = "_pred_fine._fc_out._fc_out."
    state = {**release_state, head + "weight": R.recipe_tensor("fc", (K + 1, 2 * 368), -0.5, 0.5),
             head + "bias": R.recipe_tensor("fc bias", (K + 1,), -0.5, 0.5)}
    ckpt = write_release(root / "release", state, num_classes=K)
    model = root / "model"
    assert main(["import-ugl", str(ckpt), "--out", str(model), "--classes", str(data / "class.txt"),
                 "--fps", "8", "--height", "36"]) == 0
    return data, model, names


def glip_stores(data: Path, root: Path) -> Path:
    """The synthetic matches' entities as release GLIP files (recipe features,
    0 to 3 objects a frame), converted by `uglspot detect --detector glip-import`."""
    for split in ("train", "val", "test"):
        frames = json.loads((data / f"{split}.json").read_text())[0]["num_frames"]
        rows = [torch.cat([torch.tensor([float(t), 1.0 + i, 0.1, 0.1, 0.4, 0.5]),
                           R.recipe_tensor(f"{split}{t}.{i}", (256,), -3, 3)])
                for t in range(frames) for i in range(t % 4)]
        (root / "glip").mkdir(exist_ok=True)
        torch.save(torch.stack(rows), root / "glip" / f"{split}_000.pt")
    assert main(["detect", *(str(root / "glip" / f"{split}_000.pt") for split in ("train", "val", "test")),
                 "--detector", "glip-import", "--fps", "8", "--out", str(root / "stores")]) == 0
    return root / "stores"


def test_imported_release_model_spots_and_predicts_a_synthetic_match(tmp_path, synthetic_import):
    """A release checkpoint for the synthetic dataset's classes, imported,
    with the matches' entities given as release GLIP files and converted by
    glip-import: `uglspot spot` writes the events of a match, and `uglspot
    predict` those of the test split with their mAP."""
    from _engine_helpers import tiny_config
    from uglspot.engine.config import saved_config_text

    data, model, names = synthetic_import
    stores = glip_stores(data, tmp_path)
    out = tmp_path / "spotted"
    assert main(["spot", str(data / "videos" / "test_000.mp4"), "--model", str(model),
                 "--entities", str(stores), "--out", str(out), "--no-plot"]) == 0
    events = json.loads((out / "test_000" / "events.json").read_text())
    assert events["num_frames"] == 48 and events["events"]  # 0.1 min at 8 fps
    assert {e["label"] for e in events["events"]} <= set(names)
    assert any(e["entities"] for e in events["events"])  # the attention names the entities it kept
    config = tiny_config(type("D", (), {"labels": data, "videos": data / "videos", "entities": stores}),
                         tmp_path / "run")
    config.data.fps, config.data.height, config.data.entity_slots = 8.0, 36, 50
    config.model.name, config.model.options = "uglr_rny002", {}
    (tmp_path / "config.yaml").write_text(saved_config_text(config))
    assert main(["predict", str(tmp_path / "config.yaml"), "--model", str(model), "--split", "test",
                 "--out", str(tmp_path / "predicted")]) == 0
    metrics = json.loads((tmp_path / "predicted" / "metrics.json").read_text())
    assert metrics["mAP"]


def test_train_init_starts_from_an_imported_release_model(tmp_path, synthetic_import):
    """`uglspot train --init` on the synthetic dataset starts the uglr model
    from the imported release weights: two AdamW steps at lr 1e-3 move no
    weight further than 0.01 from them, while a fresh model differs by far
    more; an init whose weights do not fit is refused in one line."""
    from _engine_helpers import tiny_config
    from uglspot.engine.config import saved_config_text
    from uglspot.engine.infer import model_directory

    data, model, _ = synthetic_import
    config = tiny_config(type("D", (), {"labels": data, "videos": data / "videos", "entities": data / "entities"}),
                         tmp_path / "run", epochs=1, epoch_frames=32, val_every=5)
    config.data.fps, config.data.height, config.data.entity_slots = 8.0, 36, 50
    config.model.name, config.model.options = "uglr_rny002", {}
    (tmp_path / "config.yaml").write_text(saved_config_text(config))
    assert main(["train", str(tmp_path / "config.yaml"), "--init", str(model)]) == 0
    trained = load_model(model_directory(tmp_path / "run"))
    start = dict(load_model(model).named_parameters())
    torch.manual_seed(config.train.seed)  # the model the run would have started from without --init
    fresh = create_model("uglr_rny002", trained.config.num_classes, clip_len=8)
    moved = max((p - start[n]).abs().max().item() for n, p in trained.named_parameters())
    far = max((p - start[n]).abs().max().item() for n, p in fresh.named_parameters())
    assert 0 < moved < 0.01 < far
    config.model.name = "ugl_paper_rny002"
    (tmp_path / "paper.yaml").write_text(saved_config_text(config))
    err = run_cli_err(["train", str(tmp_path / "paper.yaml"), "--init", str(model), "--out", str(tmp_path / "r2")])
    assert "weights do not fit" in err and "it is a uglr_rny002 model" in err
    assert not (tmp_path / "r2" / "checkpoints").exists()
    err = run_cli_err(["train", str(tmp_path / "config.yaml"), "--init", str(tmp_path / "nothing"),
                       "--out", str(tmp_path / "r3")])
    assert "neither a model directory" in err
    err = run_cli_err(["train", "--resume", str(tmp_path / "run"), "--init", str(model)])
    assert "give one of them" in err


def run_cli_err(argv: list[str]) -> str:
    """stderr of a CLI call that must fail with one line."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 1
    assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    return err.getvalue()
