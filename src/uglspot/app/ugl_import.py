"""Turn a checkpoint of the released UGL code into an uglspot model folder
(``uglspot import-ugl``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ImportedRelease:
    """The model :func:`import_ugl` wrote."""

    out: Path
    variant: str  # uglr_rny002/uglr_rny008 (GLIP features) or e2e_rny002/e2e_rny008 (without)
    num_classes: int
    clip_len: int
    loss: str  # focal or ce, from the release's label_type
    notes: list[str] = field(default_factory=list)  # what the user should know about the folder


def import_ugl(checkpoint: str | Path, out: str | Path, config: str | Path | None = None,
               classes: str | Path | None = None, fps: float | None = None, height: int = 224,
               width: int | None = None, overwrite: bool = False) -> ImportedRelease:
    """Convert a released-UGL ``checkpoint_NNN.pt`` (with its ``config``,
    default config.json beside it) into ``out``: the uglr_* model that gives
    its logits (e2e_* when it was trained without GLIP features), its
    ``inference.json`` (``classes`` from the dataset's class.txt, else
    class1..classK; frames decoded at ``fps``, None = each video's own rate,
    ``height`` × ``width`` as the release's frames were extracted; the
    release's centre crop) so that ``spot`` and ``predict`` take the folder.
    The .pt file is read without unpickling code; nothing is written unless
    every tensor maps."""
    import torch

    from uglspot.data.labels import read_class_list
    from uglspot.engine.model_folder import CONFIG_FILE, WEIGHTS_FILE, load_foreign_checkpoint, save_model
    from uglspot.engine.infer import INFERENCE_JSON, InferenceSettings, write_inference_settings
    from uglspot.errors import UserError
    from uglspot.io import read_json, refuse_overwrite
    from uglspot.model.spotter import create_model
    from uglspot.model.ugl_release import convert_release_state, parse_release_config

    checkpoint, out = Path(checkpoint), Path(out)
    config_path = Path(config) if config is not None else checkpoint.parent / "config.json"
    if not checkpoint.is_file():
        raise UserError(f"{checkpoint}: checkpoint not found; give the checkpoint_NNN.pt the released UGL code saved")
    if not config_path.is_file():
        raise UserError(f"{config_path}: not found; the release writes config.json beside its checkpoints "
                        "(or pass --config)")
    setup = parse_release_config(read_json(config_path), str(config_path))
    files = (CONFIG_FILE, WEIGHTS_FILE, INFERENCE_JSON)
    for name in files:
        refuse_overwrite(out / name, checkpoint, config_path)
    if not overwrite and any((out / name).exists() for name in files):
        raise UserError(f"{out}: already holds a model; pass --overwrite to replace it or choose another --out")
    notes = []
    if classes:
        names = read_class_list(classes)
        if len(names) != setup.num_classes:
            raise UserError(f"{classes}: {len(names)} classes but {config_path} says num_classes "
                            f"{setup.num_classes}; give the dataset's own class.txt")
    else:
        names = [f"class{i + 1}" for i in range(setup.num_classes)]
        notes.append(f"classes named class1..class{setup.num_classes}; pass --classes class.txt for their names")
    if fps is None:
        notes.append("frames are decoded at each video's own rate; pass --fps if the release's frames were "
                     "extracted at another (SoccerNet: 2)")

    state = load_foreign_checkpoint(checkpoint)
    model = create_model(setup.variant, setup.num_classes, **setup.overrides)
    with torch.no_grad():
        model.load_state_dict(convert_release_state(state, model, str(checkpoint)))
    metadata = {"source": "ugl-release", "checkpoint": str(checkpoint), "release_config": str(config_path),
                "dataset": setup.dataset, "classes": names}
    save_model(model, out, metadata=metadata)
    crop = [setup.crop_dim, setup.crop_dim] if setup.crop_dim else None
    write_inference_settings(out, InferenceSettings(
        classes=names, clip_len=setup.clip_len, dataset=setup.dataset or "", fps=fps, height=height, width=width,
        crop=crop, nms_window=2 if str(setup.dataset).startswith("soccernet") else 1,
        entities={"detector": "glip-import", "features": "roi"} if model.config.use_entities else None))
    return ImportedRelease(out, setup.variant, setup.num_classes, setup.clip_len, model.config.loss, notes)
