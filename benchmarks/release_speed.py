"""uglspot's UGL model against the released UGL code's own model, on the same
inputs, in one run. Prints one JSON line per figure.

The released UGL code (github.com/phuc16102001/unifying-global-local-feature)
is not part of uglspot: clone it and pass its folder. This script imports its
``train_e2e.E2EModel.Impl`` (RegNet-Y + GSM, the GRU head and its GLIP
``ObjectFusion``) and times it beside uglspot's ``ugl_<arch>`` with stored
detector features of the same width (both selections) and the global-only
``e2e_<arch>``, each with its own loss and optimiser (the release: its
sigmoid focal loss and a plain ``torch.optim.AdamW``; uglspot: the model's
loss and the engine's optimiser), model after model in every round so a
drifting load hits all alike.

Inputs: frames (B, T, 3, H, W), 50 object slots a frame of which ``--valid``
hold an object, laid out as the release's loader lays them (the filled slots
first, 256-d features, a 0/1 mask), one-hot targets. Sizes as
``model_speed.py`` on a CPU: B=1, T=16, 112×200, fp32. The release runs on
CPU with shims that change no computation: ``Tensor.cuda()`` returns the
tensor, ``torch.cuda.FloatTensor`` (its GSM's zero padding) makes a CPU
tensor, timm 1.x's ``ConvNormAct`` stands for the ``ConvBnAct`` its GSM
looks for, ``timm.create_model`` never downloads weights, and its unused
``tabulate`` import is a stub. Usage:

    PYTHONPATH=src python benchmarks/release_speed.py PATH/TO/unifying-global-local-feature [--arch rny008]
        [--rounds 5] [--threads 1]

Figures: ``train_frames_per_s`` and ``infer_frames_per_s`` per model (median
over the rounds), and per uglspot model ``speed_over_release`` (its frames/s
over the release's, in the same rounds) and ``time_over_global_only`` (its
step time over ``e2e_<arch>``'s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from model_speed import median
from uglspot.engine.schedule import adamw
from uglspot.entities.batch import EntityBatch
from uglspot.model import create_model

FEAT = 256  # GLIP's feature width, as the release reads it


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path, help="a clone of the released UGL code (holds train_e2e.py)")
    parser.add_argument("--arch", choices=["rny002", "rny008"], default="rny008")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=112)
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--slots", type=int, default=50)
    parser.add_argument("--valid", type=float, default=0.4, help="fraction of slots holding an object")
    parser.add_argument("--classes", type=int, default=17)
    return parser.parse_args(argv)


def release_model(folder: Path, arch: str, classes: int, clip_len: int) -> tuple[torch.nn.Module, object]:
    """The release's E2EModel.Impl with GLIP fusion, and its sigmoid focal loss."""
    if not (folder / "train_e2e.py").is_file():
        sys.exit(f"{folder}: no train_e2e.py here; pass a clone of the released UGL code")
    import timm
    import timm.layers
    import timm.models.layers

    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.cuda.FloatTensor = torch.FloatTensor
    timm.models.layers.conv_bn_act = types.SimpleNamespace(ConvBnAct=timm.layers.ConvNormAct)
    create = timm.create_model
    timm.create_model = lambda name, pretrained=False, **kw: create(name, pretrained=False, **kw)
    sys.modules.setdefault("tabulate", types.SimpleNamespace(tabulate=lambda *a, **k: ""))
    sys.path.insert(0, str(folder))
    import train_e2e
    from util.losses import sigmoid_focal_loss

    torch.manual_seed(0)
    with contextlib.redirect_stdout(sys.stderr):  # it prints its stages as it builds them: not JSON
        model = train_e2e.E2EModel.Impl(classes + 1, f"{arch}_gsm", "gru", clip_len, glip_feature=True,
                                        modality="rgb", label_type="one_hot", alpha=0.25, gamma=2.0)
    return model, sigmoid_focal_loss


def make_inputs(args: argparse.Namespace):
    g = torch.Generator().manual_seed(0)
    B, T, N = args.batch, args.frames, args.slots
    frames = torch.randn(B, T, 3, args.height, args.width, generator=g)
    counts = (torch.rand(B, T, N, generator=g) < args.valid).sum(-1, keepdim=True)  # (B, T, 1)
    mask = torch.arange(N).view(1, 1, N) < counts  # (B, T, N), the filled slots first
    feat = torch.randn(B, T, N, FEAT, generator=g) * mask.unsqueeze(-1)
    xy = torch.rand(B, T, N, 2, generator=g) * 0.8
    entities = EntityBatch(boxes=torch.cat([xy, xy + 0.02 + 0.18 * torch.rand(B, T, N, 2, generator=g)], -1),
                           cls=torch.zeros(B, T, N, dtype=torch.long), score=torch.rand(B, T, N, generator=g),
                           mask=mask, feat=feat)
    targets = F.one_hot(torch.randint(0, args.classes + 1, (B, T), generator=g), args.classes + 1).float()
    return frames, entities, targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    frames, entities, targets = make_inputs(args)
    release, focal = release_model(args.release, args.arch, args.classes, args.frames)
    reference = f"e2e_{args.arch}"
    models: dict[str, torch.nn.Module] = {"release": release}
    for label, options in [(reference, {}),
                           (f"ugl_{args.arch}/detector/learned", {"entity_selection": "learned"}),
                           (f"ugl_{args.arch}/detector/hard", {"entity_selection": "hard"})]:
        if options:
            options.update(entity_source="detector", entity_feat_dim=FEAT)
        torch.manual_seed(0)
        models[label] = create_model(label.split("/")[0], args.classes, clip_len=args.frames,
                                     entity_slots=args.slots, **options)
    optimizers = {label: torch.optim.AdamW(model.parameters(), lr=1e-4) if label == "release"
                  else adamw(model, lr=1e-4, weight_decay=0.01) for label, model in models.items()}

    def step(label: str, train: bool) -> None:
        model = models[label]
        model.train(train)
        with torch.enable_grad() if train else torch.inference_mode():
            if label == "release":
                logits = model(frames, entities.feat, entities.mask.float()).reshape(-1, args.classes + 1)
                loss = focal(logits, targets.reshape(-1, args.classes + 1), alpha=0.25, gamma=2.0,
                             reduction="sum") / logits.shape[0]
            else:
                out = model(frames, entities if model.config.use_entities else None)
                loss = model.training_loss(out, targets) if train else None
            if train:
                loss.backward()
                optimizers[label].step()
                optimizers[label].zero_grad(set_to_none=True)

    context = dict(device="cpu", batch=args.batch, frames=args.frames, height=args.height, width=args.width,
                   slots=args.slots, valid=args.valid, threads=args.threads, rounds=args.rounds, amp="fp32",
                   release=str(args.release.name))
    for phase in ("train", "infer"):
        for label in models:  # warm-up
            step(label, phase == "train")
        seconds: dict[str, list[float]] = {label: [] for label in models}
        for _ in range(args.rounds):
            for label in models:
                start = time.perf_counter()
                step(label, phase == "train")
                seconds[label].append(time.perf_counter() - start)
        clip_frames = args.batch * args.frames
        for label, times in seconds.items():
            print(json.dumps(dict(figure=f"{phase}_frames_per_s", model=label if label != "release" else
                                  f"release_ugl_{args.arch}", value=round(clip_frames / median(times), 2),
                                  unit="frames/s", **context)), flush=True)
        for label in models:
            if label.startswith("ugl_"):
                over_release = median([r / s for r, s in zip(seconds["release"], seconds[label])])
                over_global = median([s / g for s, g in zip(seconds[label], seconds[reference])])
                print(json.dumps(dict(figure="speed_over_release", phase=phase, model=label,
                                      value=round(over_release, 3), unit="x (median over rounds)", **context)))
                print(json.dumps(dict(figure="time_over_global_only", phase=phase, model=label,
                                      value=round(over_global, 3), unit="x (median over rounds)", **context)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
