"""``uglspot eval soccernet``: SoccerNet average-mAP of a folder of predictions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from uglspot.errors import UserError


def register_eval(protocols: argparse._SubParsersAction) -> None:
    from uglspot.metrics.soccernet import METRIC_TOLERANCES_S

    parser = protocols.add_parser(
        "soccernet", help="SoccerNet average-mAP (tight, loose, at1..at5), as the official evaluator",
        description="Score <game>/results_spotting.json files under PRED_DIR against <game>/Labels-v2.json "
                    "files under LABELS_DIR (games at any depth, matched by their path below each folder) "
                    "with SoccerNet's average-mAP; the numbers equal those of the official SoccerNet package.")
    parser.add_argument("labels_dir", metavar="LABELS_DIR", type=Path, help="folder of <game>/Labels-v2.json")
    parser.add_argument("pred_dir", metavar="PRED_DIR", type=Path, help="folder of <game>/results_spotting.json")
    parser.add_argument("--metric", choices=list(METRIC_TOLERANCES_S), default="tight",
                        help="tight: 1..5 s; loose: 5..60 s step 5; atK: the single tolerance K s (default tight)")
    parser.add_argument("--split-list", type=Path, metavar="FILE",
                        help="score only these games: a text file with one game path per line, a JSON list of "
                             "them, or SoccerNet's {league: {season: [game]}} (e.g. SoccerNetGamesTest.json)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with fractions in [0, 1]")
    parser.set_defaults(func=run)


def read_split_list(path: Path) -> list[str]:
    from uglspot.io import read_json

    if path.suffix == ".json":
        games = _flatten(read_json(path), "", path)
    else:
        try:
            games = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except FileNotFoundError:
            raise UserError(f"{path}: split list not found") from None
    games = [g.strip("/") for g in games if g.strip()]
    if not games:
        raise UserError(f"{path}: the split list names no game")
    return games


def _flatten(node: object, prefix: str, path: Path) -> list[str]:
    """Game paths of a JSON list of paths, or of SoccerNet's nested
    ``{league: {season: [game, ...]}}``."""
    if isinstance(node, str):
        return [prefix + node]
    if isinstance(node, list):
        return [game for item in node for game in _flatten(item, prefix, path)]
    if isinstance(node, dict):
        return [game for key, item in node.items() for game in _flatten(item, f"{prefix}{key}/", path)]
    raise UserError(f"{path}: expected a JSON list of game paths like 'league/season/game', or "
                    "{league: {season: [game, ...]}} as in SoccerNet's game lists")


def run(args: argparse.Namespace) -> int:
    from uglspot.data.soccernet import LABELS_FILE, read_labels_dir, read_predictions_dir
    from uglspot.metrics.soccernet import average_map

    labels = read_labels_dir(args.labels_dir)
    if not labels:
        raise UserError(f"{args.labels_dir}: no {LABELS_FILE} found at any depth; pass the SoccerNet labels folder")
    predictions = read_predictions_dir(args.pred_dir)
    known = {item.game for item in labels}
    unknown = sorted(p.game for p in predictions if p.game not in known)
    if unknown:
        raise UserError(f"{args.pred_dir}: {len(unknown)} game(s) have predictions but no {LABELS_FILE} under "
                        f"{args.labels_dir}, first {unknown[0]!r}; check that both folders hold the same split")
    if args.split_list is not None:
        wanted = read_split_list(args.split_list)
        missing = [g for g in wanted if g not in known]
        if missing:
            raise UserError(f"{args.split_list}: {len(missing)} listed game(s) have no {LABELS_FILE} under "
                            f"{args.labels_dir}, first {missing[0]!r}")
        chosen = set(wanted)
        labels = [item for item in labels if item.game in chosen]
        predictions = [item for item in predictions if item.game in chosen]
    with_predictions = {p.game for p in predictions}
    without = sum(1 for item in labels if item.game not in with_predictions)
    if without:
        print(f"uglspot eval soccernet: {without} of {len(labels)} games have no results_spotting.json under "
              f"{args.pred_dir}; they count as games without predictions", file=sys.stderr)

    result = average_map(labels, predictions, args.metric)
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    rows = [(name, result.a_mAP_per_class[name], result.a_mAP_per_class_visible[name],
             result.a_mAP_per_class_unshown[name]) for name in result.a_mAP_per_class]
    width = max(len(name) for name, *_ in rows + [("Average-mAP",)])
    print(f"SoccerNet {args.metric} average-mAP (%), {len(labels)} games")
    print(f"{'class':<{width}}  {'all':>7}  {'visible':>7}  {'unshown':>7}")
    for name, *values in rows + [("Average-mAP", result.a_mAP, result.a_mAP_visible, result.a_mAP_unshown)]:
        print(f"{name:<{width}}  " + "  ".join(f"{100 * v:7.2f}" for v in values))
    return 0
