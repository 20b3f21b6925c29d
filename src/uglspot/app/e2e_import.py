"""Turn a released E2E-Spot checkpoint into an uglspot model folder
(``uglspot import-e2e-spot``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UGL_TARGETS = ("ugl_rny002", "ugl_rny008", "ugl_paper_rny002", "ugl_paper_rny008")


@dataclass
class ImportedModel:
    """The model :func:`import_e2e_spot` wrote."""

    out: Path
    variant: str
    num_classes: int
    clip_len: int
    shift: str


def import_e2e_spot(checkpoint: str | Path, out: str | Path, config: str | Path | None = None,
                    into: str | None = None, classes: str | Path | None = None,
                    overwrite: bool = False) -> ImportedModel:
    """Convert an E2E-Spot ``checkpoint_NNN.pt`` (with its ``config``, default
    config.json beside it) into the matching e2e_rny002/e2e_rny008 model in
    ``out``, or with ``into`` (one of ``UGL_TARGETS``) into a UGL model whose
    backbone and global head start from it. ``classes``: the dataset's
    class.txt, stored with the model. The .pt file is read without
    unpickling code."""
    import torch

    from uglspot.data.labels import read_class_list
    from uglspot.engine.model_folder import CONFIG_FILE, WEIGHTS_FILE, load_foreign_checkpoint, save_model
    from uglspot.errors import UserError
    from uglspot.io import read_json, refuse_overwrite
    from uglspot.model.e2e_spot import convert_e2e_spot_state, load_converted, parse_e2e_spot_config, target_variant
    from uglspot.model.spotter import create_model

    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_file():
        raise UserError(f"{checkpoint}: checkpoint not found; pass E2E-Spot's checkpoint_NNN.pt file")
    config_path = Path(config) if config is not None else checkpoint.parent / "config.json"
    setup = parse_e2e_spot_config(read_json(config_path), str(config_path))
    variant = target_variant(setup, into)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        refuse_overwrite(out / name, checkpoint, config_path)
    if not overwrite and ((out / CONFIG_FILE).exists() or (out / WEIGHTS_FILE).exists()):
        raise UserError(f"{out}: already holds a model; pass --overwrite to replace it or choose another --out")
    metadata = {"source": "e2e-spot", "checkpoint": str(checkpoint), "e2e_config": str(config_path),
                "dataset": setup.dataset}
    if classes:
        names = read_class_list(classes)
        if len(names) != setup.num_classes:
            raise UserError(f"{classes}: {len(names)} classes but {config_path} says num_classes "
                            f"{setup.num_classes}; give the model's own class.txt")
        metadata["classes"] = names

    state = load_foreign_checkpoint(checkpoint)
    model = create_model(variant, setup.num_classes, clip_len=setup.clip_len, shift=setup.shift)
    with torch.no_grad():
        load_converted(model, convert_e2e_spot_state(state, model, str(checkpoint)))
    save_model(model, out, metadata=metadata)
    return ImportedModel(out, variant, setup.num_classes, setup.clip_len, setup.shift)
