"""Make the UGL-release parity fixture (fixture.json beside this file) with
the release's own code, which is not part of this repository:

    git clone https://github.com/Fsoft-AIC/unifying-global-local-feature RELEASE
    (or its mirror github.com/phuc16102001/unifying-global-local-feature, commit 6b7092c)
    python tests/data/ugl_release/make_fixture.py RELEASE OUT_DIR
    cp OUT_DIR/fixture.json tests/data/ugl_release/

It builds the release's ``E2EModel.Impl`` (rny002_gsm, gru, clip_len 8,
GLIP features, 3 event classes), replaces every weight by the recipe of
tests/_ugl_release.py, writes the release's config.json with its own
``store_config``, saves the GLIP entity file of the recipe (twice: float32
features, and rounded to float16) and reads it back with the release's own
``load_glip``, and records the logits of the release's forward (CPU, fp32,
eval) and its ``sigmoid_focal_loss`` on recipe logits and targets as its
training epoch calls it. OUT_DIR also gets the checkpoint (47 MB, not
committed: the test rebuilds it from the recipe and the key list).

Shims (none changes a computation): Tensor.cuda() returns the tensor (CPU
only); torch.cuda.FloatTensor (the GSM's zero padding) makes a CPU tensor;
timm.models.layers.conv_bn_act.ConvBnAct is timm 1.x's ConvNormAct (the
class the release's GatedShift tests for); timm.create_model never downloads
ImageNet weights (every weight is replaced by the recipe); tabulate (only
printed tables) is a stub.
"""

import json
import sys
import types
from argparse import Namespace
from pathlib import Path

release_dir, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
sys.path[:0] = [str(release_dir), str(Path(__file__).resolve().parents[2])]  # the release, tests/

import torch  # noqa: E402
import timm  # noqa: E402
import timm.layers  # noqa: E402
import timm.models.layers  # noqa: E402

torch.Tensor.cuda = lambda self, *args, **kwargs: self
torch.cuda.FloatTensor = torch.FloatTensor
timm.models.layers.conv_bn_act = types.SimpleNamespace(ConvBnAct=timm.layers.ConvNormAct)
_create = timm.create_model
timm.create_model = lambda name, pretrained=False, **kw: _create(name, pretrained=False, **kw)
sys.modules["tabulate"] = types.SimpleNamespace(tabulate=lambda *a, **k: "")

import train_e2e  # noqa: E402  (the release's training script: E2EModel, store_config)
from dataset.frame import load_glip  # noqa: E402
from util.losses import sigmoid_focal_loss  # noqa: E402

import _ugl_release as R  # noqa: E402  (the repository's recipe)

torch.set_num_threads(1)
out.mkdir(parents=True, exist_ok=True)

impl = train_e2e.E2EModel.Impl(R.K + 1, "rny002_gsm", "gru", R.CLIP, glip_feature=True, modality="rgb",
                               label_type="one_hot", alpha=0.25, gamma=2.0)
keys = [[name, list(t.shape), str(t.dtype)] for name, t in impl.state_dict().items()]
state = R.recipe_state(keys)
impl.load_state_dict(state)
impl.eval()

args = Namespace(dataset="finediving", modality="rgb", feature_arch="rny002_gsm", temporal_arch="gru",
                 clip_len=R.CLIP, batch_size=8, crop_dim=None, warm_up_epochs=3, learning_rate=1e-3,
                 start_val_epoch=49, gpu_parallel=False, dilate_len=0, mixup=False, glip_dir="glip",
                 fg_upsample=None, label_type="one_hot", alpha=0.25, gamma=2.0)
train_e2e.store_config(str(out / "config.json"), args, 50, {f"c{i}": i + 1 for i in range(R.K)})
config = json.loads((out / "config.json").read_text())

frames = R.recipe_clip()
logits = {}
for half in (False, True):
    glip_dir = out / ("glip_half" if half else "glip")
    glip_dir.mkdir(exist_ok=True)
    torch.save(R.recipe_glip_rows(half), glip_dir / "video.pt")
    feats, masks = zip(*(load_glip(str(glip_dir), "video", list(range(s, s + R.CLIP))) for s in R.WINDOWS))
    feat, mask = torch.stack(feats), torch.stack(masks)  # (2, CLIP, 50, 256), (2, CLIP, 50)
    assert feat.shape == (len(R.WINDOWS), R.CLIP, R.SLOTS, R.FEAT), feat.shape
    with torch.no_grad():
        logits["half" if half else "float"] = impl(frames, feat, mask)
    print("objects per frame", mask.sum(-1).tolist())

# The release's loss as its training epoch calls it: sigmoid_focal_loss(..., reduction="sum") / frames.
loss_logits = R.recipe_tensor("loss logits", (2 * R.CLIP, R.K + 1), -4.0, 4.0)
labels = torch.from_numpy((R.recipe_uniform("loss labels", 2 * R.CLIP) * (R.K + 1)).astype("int64"))
targets = torch.nn.functional.one_hot(labels, R.K + 1).float()
losses = [{"alpha": a, "gamma": g,
           "loss": float(sigmoid_focal_loss(loss_logits, targets, alpha=a, gamma=g, reduction="sum")
                         / loss_logits.shape[0])}
          for a, g in ((0.25, 2.0), (0.25, 5.0), (-1.0, 2.0))]

fixture = {
    "source": "github.com/phuc16102001/unifying-global-local-feature@6b7092c, run on CPU in fp32 "
              f"with torch {torch.__version__}, timm {timm.__version__}",
    "config": config,
    "keys": keys,
    "logits": {k: v.tolist() for k, v in logits.items()},
    "focal_loss": losses,
}
(out / "fixture.json").write_text(json.dumps(fixture))
ckpt = out / "checkpoint_049.pt"
torch.save(impl.state_dict(), ckpt)
for k, v in logits.items():
    print(k, "logits: mean", v.mean().item(), "std", v.std().item(), "absmax", v.abs().max().item())
print("float vs half features: max |Δlogit|", (logits["float"] - logits["half"]).abs().max().item())
print(losses)
