"""A transformers detector's files: from the Hugging Face hub (or its local
cache) or from a local folder, with one line saying what to do when the
model cannot be had (offline machine, missing or damaged folder)."""

from __future__ import annotations

from pathlib import Path

from uglspot.entities.detector_settings import DEFAULT_MODELS
from uglspot.errors import UserError, brief

# Where a user names the detector model: a hub id or a local directory.
MODEL_OPTIONS = "`uglspot detect --model DIR` or `uglspot spot --detector-model DIR`"
_MODEL_REMEDY = (f"pass a hub id such as {DEFAULT_MODELS['grounding-dino']}, or a folder made by "
                 f"`hf download MODEL_ID --local-dir DIR`, as the detector model ({MODEL_OPTIONS})")


def _offline_error(model: str, exc: Exception) -> UserError:
    return UserError(
        f"cannot load detector model {model!r} ({type(exc).__name__}: {brief(exc)}); "
        f"if this machine cannot download it, run `hf download {model} --local-dir DIR` "
        f"on a connected machine, copy DIR here and pass it as the detector model ({MODEL_OPTIONS})")


def _cached_or_unreachable(model_id: str) -> bool:
    """True if the hub model is in the local cache; an error at once (not
    after minutes of retries) if it is not and the hub cannot be reached."""
    from huggingface_hub import try_to_load_from_cache

    from uglspot.hub import offline_reason

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return True
    reason = offline_reason(model_id)
    if reason is not None:
        raise _offline_error(model_id, OSError(reason))
    return False


def _missing_model_files(folder: Path) -> list[str]:
    """What a transformers model folder lacks: its config, its processor's
    settings, its weights (as `hf download` or ``save_pretrained`` write them)."""
    wanted = {"config.json": ("config.json",),
              "processor_config.json": ("processor_config.json", "preprocessor_config.json"),
              "weights (*.safetensors)": ("*.safetensors", "*.bin")}
    return [name for name, patterns in wanted.items()
            if not any(next(folder.glob(pattern), None) is not None for pattern in patterns)]


def load_model(model_cls, model_id: str):
    """Model and processor from a local directory or the Hugging Face hub."""
    from transformers import AutoProcessor

    local = Path(model_id).expanduser()
    if not local.exists() and (model_id.startswith((".", "/", "~")) or model_id.count("/") > 1):
        raise UserError(f"{model_id}: model directory not found; {_MODEL_REMEDY}")
    if local.exists() and not local.is_dir():
        raise UserError(f"{model_id}: a file; the detector model is a hub id or a model directory; {_MODEL_REMEDY}")
    if local.is_dir():
        missing = _missing_model_files(local)
        if missing:
            raise UserError(f"{model_id}: not a complete model folder (no {' and no '.join(missing)} in it); "
                            f"{_MODEL_REMEDY}")
    source = str(local) if local.is_dir() else model_id
    local_only = local.is_dir() or _cached_or_unreachable(model_id)
    from safetensors import SafetensorError

    try:
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
        model = model_cls.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        if local.is_dir():  # nothing to download: the folder itself is damaged
            reason = brief(str(exc).replace(f"'{source}'", "it").replace(source, "it"))
            raise UserError(f"{model_id}: cannot load the detector model in this folder ({type(exc).__name__}: "
                            f"{reason}); {_MODEL_REMEDY}") from None
        raise _offline_error(model_id, exc) from None
    return model.eval(), processor
