"""``uglspot eval``: the parent of the evaluation commands.

Each evaluation protocol lives in its own module with ``register_eval(sub)``:
``eval_frames`` (mAP at frame tolerances) and ``eval_soccernet`` (SoccerNet
average-mAP).
"""

from __future__ import annotations

import argparse
import importlib

ORDER = 20
EVAL_MODULES = ("uglspot.commands.eval_frames", "uglspot.commands.eval_soccernet")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="score predictions against ground truth",
        description="Score predicted events against ground truth with the metric of the field.")
    protocols = parser.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    for name in EVAL_MODULES:
        importlib.import_module(name).register_eval(protocols)
