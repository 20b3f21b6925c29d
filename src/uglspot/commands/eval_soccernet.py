"""``uglspot eval soccernet``: SoccerNet average-mAP of a folder of predictions
(``uglspot.app.evaluate``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from uglspot.app.evaluate import evaluate_soccernet_games, soccernet_metrics


def register_eval(protocols: argparse._SubParsersAction) -> None:
    parser = protocols.add_parser(
        "soccernet", help="SoccerNet average-mAP (tight, loose, at1..at5), as the official evaluator",
        description="Score <game>/results_spotting.json files under PRED_DIR against <game>/Labels-v2.json "
                    "files under LABELS_DIR (games at any depth, matched by their path below each folder) "
                    "with SoccerNet's average-mAP; the numbers equal those of the official SoccerNet package.")
    parser.add_argument("labels_dir", metavar="LABELS_DIR", type=Path, help="folder of <game>/Labels-v2.json")
    parser.add_argument("pred_dir", metavar="PRED_DIR", type=Path, help="folder of <game>/results_spotting.json")
    parser.add_argument("--metric", choices=soccernet_metrics(), default="tight",
                        help="tight: 1..5 s; loose: 5..60 s step 5; atK: the single tolerance K s (default tight)")
    parser.add_argument("--split-list", type=Path, metavar="FILE",
                        help="score only these games: a text file with one game path per line, a JSON list of "
                             "them, or SoccerNet's {league: {season: [game]}} (e.g. SoccerNetGamesTest.json)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with fractions in [0, 1]")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    scored = evaluate_soccernet_games(args.labels_dir, args.pred_dir, args.metric, args.split_list)
    if scored.without_predictions:
        print(f"uglspot eval soccernet: {scored.without_predictions} of {scored.games} games have no "
              f"results_spotting.json under {args.pred_dir}; they count as games without predictions",
              file=sys.stderr)
    for what, unit, ignored in (("label class", "event", scored.ignored_labels),
                                ("predicted class", "prediction", scored.ignored_predictions)):
        if ignored:
            counts = ", ".join(f"{name!r} ({count} {unit}{'s' if count != 1 else ''})"
                               for name, count in ignored.items())
            print(f"uglspot eval soccernet: ignored {len(ignored)} {what}{'es' if len(ignored) != 1 else ''} "
                  f"not among the {len(scored.classes)} SoccerNet-v2 classes the average is over: {counts}",
                  file=sys.stderr)
    result = scored.result
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    rows = [(name, result.a_mAP_per_class[name], result.a_mAP_per_class_visible[name],
             result.a_mAP_per_class_unshown[name]) for name in result.a_mAP_per_class]
    width = max(len(name) for name, *_ in rows + [("Average-mAP",)])
    print(f"SoccerNet {args.metric} average-mAP (%), {scored.games} games, "
          f"the mean over the {len(scored.classes)} SoccerNet-v2 classes below")
    print(f"{'class':<{width}}  {'all':>7}  {'visible':>7}  {'unshown':>7}")
    for name, *values in rows + [("Average-mAP", result.a_mAP, result.a_mAP_visible, result.a_mAP_unshown)]:
        print(f"{name:<{width}}  " + "  ".join(f"{100 * v:7.2f}" for v in values))
    return 0

