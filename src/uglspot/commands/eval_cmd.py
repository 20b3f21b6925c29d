"""``uglspot eval``: the parent of the evaluation protocols.

Every command module that defines ``register_eval(protocols)`` adds one
protocol, e.g. ``eval frames`` (mAP at frame tolerances) and ``eval soccernet``
(SoccerNet average-mAP).
"""

from __future__ import annotations

import argparse

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    from uglspot.commands import command_modules

    parser = subparsers.add_parser(
        "eval", help="score predictions against ground truth",
        description="Score predicted events against ground truth with the metric of the field.")
    protocols = parser.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    for module in command_modules(hook="register_eval"):
        module.register_eval(protocols)
