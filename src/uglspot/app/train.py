"""Train a spotter from a YAML configuration (``uglspot train``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from uglspot.errors import Interrupted, UserError


@dataclass
class TrainOutcome:
    """A finished run: its directory and the loop's final ``Progress``
    (epoch, step, bad_total, best, best_epoch)."""

    run: Path
    progress: Any
    main_process: bool  # False on the other ranks of a torchrun job (they report nothing)


def train_from_config(config: str | Path | None = None, overrides: Sequence[str] = (),
                      resume: str | Path | None = None, out: str | Path | None = None,
                      init: str | Path | None = None) -> TrainOutcome:
    """Train the model of ``config`` (YAML, see configs/) with ``KEY=VALUE``
    ``overrides`` into ``out`` (default: the config's ``out``), or continue
    the run in ``resume`` from its last complete checkpoint (its own
    config.yaml unless ``config`` is given). ``init``: a model folder or run
    directory whose weights the new run starts from (``model.init``). Under
    torchrun every rank calls this."""
    from uglspot.engine.config import check_saved_config, load_run_config
    from uglspot.engine.preflight import set_keys
    from uglspot.engine.train import train

    resume = Path(resume) if resume is not None else None
    out = Path(out) if out is not None else None
    given = list(overrides)
    overrides = list(overrides)
    if init is not None:
        if resume is not None:
            raise UserError(f"--init {init} starts a new run from a model's weights; --resume {resume} continues "
                            "a run from its own checkpoint: give one of them")
        overrides.append(f"model.init={Path(init).resolve()}")
    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise UserError(f"--out {out} and --resume {resume} differ; a resumed run stays in its directory")
        config_path = config or resume / "config.yaml"
        if not Path(config_path).is_file():
            raise UserError(f"{config_path}: not found; is {resume} a run directory of `uglspot train`?")
        if config is None:
            check_saved_config(Path(config_path))
        overrides.append(f"out={resume.resolve()}")
    elif config is None:
        raise UserError("give a CONFIG.yaml (see configs/), or --resume RUN_DIR")
    else:
        config_path = config
        if out is not None:
            overrides.append(f"out={out.resolve()}")
    run_config = load_run_config(config_path, overrides)
    try:
        progress = train(run_config, resume=resume is not None, set_keys=set_keys(given))
    except KeyboardInterrupt:
        raise Interrupted(interrupted_advice(Path(run_config.out))) from None
    return TrainOutcome(Path(run_config.out), progress, os.environ.get("RANK", "0") == "0")


def interrupted_advice(run: Path) -> str:
    """What to do after Ctrl-C stopped a run in ``run``: the command that
    continues it from its last checkpoint, or, before there is one, that
    nothing was saved."""
    import shlex

    from uglspot.engine.state import resolve

    try:
        last = resolve(run / "checkpoints", "last", missing_ok=True)
    except UserError:  # a damaged pointer: resume explains it
        last = run
    if last is None:
        return f"no checkpoint was saved in {run} yet; run the same command again to start over"
    return f"continue from its last checkpoint with `uglspot train --resume {shlex.quote(str(run))}`"
