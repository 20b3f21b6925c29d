"""Checks of a folder of entity stores against the videos and the model that
will read them, done once before training or inference starts, so a missing
store or a vocabulary the model cannot embed is one clear line instead of an
error deep inside a data-loader worker (or, worse, silently wrong classes).

The detector settings of the stores a model was trained on are kept in its
``inference.json`` (``entities``) so ``uglspot spot --detector`` can detect
new videos with the same vocabulary, in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from uglspot.errors import UserError, listed, problems_error


def counts_disagree(have: int, expected: int) -> bool:
    """Whether a frame count is too far from the labels' to be the same video
    at the same rate: more than 15 % off (a wrong --fps is off by a factor;
    label files made from match lengths, like SoccerNet's, are a few % off)."""
    return abs(have - expected) > 2 + 0.15 * expected


def check_entity_stores(root: str | Path, videos: Sequence[tuple[str, int | None]], model_config: Any,
                        expected_prompt: Sequence[str] | None = None,
                        expected_features: str | None = None,
                        rates: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """Raise :func:`entity_store_problems` as one error (the first three
    problems); else return the detection settings of the stores."""
    problems, settings = entity_store_problems(root, videos, model_config, expected_prompt, expected_features,
                                               rates)
    if problems:
        raise problems_error(f"{root}: entity stores do not fit", problems)
    return settings


def entity_store_problems(root: str | Path, videos: Sequence[tuple[str, int | None]], model_config: Any,
                          expected_prompt: Sequence[str] | None = None, expected_features: str | None = None,
                          rates: Mapping[str, float | None] | None = None) -> tuple[list[str], dict[str, Any]]:
    """Open the header of the store of every ``(video id, expected frame
    count or None)`` under ``root`` and check: every store exists and is
    readable; all share one vocabulary (``expected_prompt`` when given, the
    vocabulary the model was trained on); the model can embed it
    (``num_entity_classes``); with ``entity_source: detector`` the stores hold
    features of ``entity_feat_dim``, all of one kind (``expected_features``
    when given, the kind the model was trained on: ``roi`` features are never
    fed to a model trained on ``query`` ones, nor the reverse); a store's
    frame count matches the video's; a store detected at a known rate was
    detected at the rate its video is decoded at (``rates[video id]``, when
    known). Returns one line per problem and the detection settings of the
    stores (``DETECTION_FIELDS`` and fps; empty without stores)."""
    from uglspot.entities.store import DETECTION_FIELDS, EntityStore, StoreKey, store_path

    root = Path(root)
    if not root.is_dir():
        return [f"entity folder {root} does not exist; create the stores with "
                f"`uglspot detect VIDEOS --fps F --out {root}`"], {}
    missing, problems = [], []
    first: tuple[str, dict[str, Any]] | None = None
    for video_id, num_frames in videos:
        path = store_path(root, video_id)
        if not path.is_file():
            missing.append(video_id)
            continue
        try:
            header = EntityStore.read_header(path)
            EntityStore.verify(path)
            key = StoreKey.from_json(header["key"], f"{path}: key").to_json()  # an old key gets its feature kind
        except UserError as exc:
            problems.append(str(exc))
            continue
        header = {**header, "key": key}
        if first is None:
            first = (video_id, header)
        prompt = list(expected_prompt if expected_prompt is not None else first[1]["key"]["prompt"])
        if list(key["prompt"]) != prompt:
            where = "the model was trained on" if expected_prompt is not None else f"the store of {first[0]!r} has"
            problems.append(f"{path.name}: vocabulary {key['prompt']} but {where} {prompt}")
        rate = (rates or {}).get(video_id)
        if rate and key["fps"] and abs(key["fps"] - rate) > 1e-3 * rate:
            problems.append(f"{path}: entities detected at {key['fps']:g} fps but the frames are decoded at "
                            f"{rate:g} fps (data.fps or the labels' rate); detect again with "
                            f"`uglspot detect VIDEOS --fps {rate:g} --out {root}`")
        elif num_frames is not None and counts_disagree(header["num_frames"], num_frames):
            problems.append(f"{path.name}: {header['num_frames']} frames but the video has {num_frames} "
                            f"(detected at fps {key['fps']}?)")
        if model_config.entity_source == "detector" and header["feat_dim"] != model_config.entity_feat_dim:
            problems.append(f"{path.name}: features of width {header['feat_dim']} but the model "
                            f"(entity_source detector) needs entity_feat_dim {model_config.entity_feat_dim}")
        kind = expected_features if expected_features is not None else first[1]["key"]["features"]
        if model_config.entity_source == "detector" and key["features"] != kind:
            where = "the model was trained on" if expected_features is not None else f"the store of {first[0]!r} has"
            problems.append(f"{path.name}: {key['features']} features but {where} {kind} features; detect "
                            f"again with `uglspot detect ... --features {kind}`")
    if missing:
        shown = listed(missing, 5)
        problems.insert(0, f"{root}: no entity store for {len(missing)} video(s): {shown}; create them with "
                           f"`uglspot detect VIDEOS --fps F --out {root}` (stores are named by video id)")
    if first is None:
        return problems, {}
    key = first[1]["key"]
    classes = model_config.num_entity_classes
    if classes and len(key["prompt"]) > classes:
        problems.append(f"{root}: the stores' vocabulary has {len(key['prompt'])} names ({', '.join(key['prompt'])}) "
                        f"but the model embeds {classes} entity classes; set "
                        f"model.options.num_entity_classes={len(key['prompt'])}")
    return problems, {**{name: key[name] for name in DETECTION_FIELDS}, "fps": key["fps"]}
