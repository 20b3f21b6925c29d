"""One self-contained HTML page about a run's predictions (``uglspot report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from uglspot.errors import UserError


def write_report(run: str | Path, out: str | Path | None = None, truth: str | Path | None = None,
                 classes: str | Path | None = None, videos: str | Path | None = None,
                 tolerances: Sequence[int] = (1, 2), gallery_per_class: int = 2, max_timelines: int = 6,
                 title: str | None = None) -> Path:
    """Write the HTML report of the predictions in ``run`` (a folder with
    ``predictions/<variant>/**/events.json``, as the demo writes, or a folder
    of events.json files) to ``out`` (default ``run/report.html``): AP per
    class of each variant against ``truth`` (E2E-Spot labels; ``classes``:
    class.txt, default beside it), PR curves, timelines and a gallery of
    frames from ``videos``. Returns the path written."""
    from uglspot.io import refuse_overwrite, write_text_atomic
    from uglspot.progress import progress_bar
    from uglspot.report import build_report, load_inputs

    run = Path(run)
    truth, classes, videos = (Path(p) if p is not None else None for p in (truth, classes, videos))
    out = Path(out) if out is not None else run / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: the report is an HTML file; give a name ending in .html")
    inputs = load_inputs(run, truth=truth, classes=classes, videos=videos, title=title)
    refuse_overwrite(out, *(p for p in (truth, classes) if p is not None))
    with progress_bar("report", 4 if inputs.truth is not None else 2, "part") as bar:
        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            bar.update(1)

        document, _ = build_report(inputs, tolerances=tuple(tolerances), gallery_per_class=gallery_per_class,
                                   max_timelines=max_timelines, progress=progress)
    write_text_atomic(out, document)
    return out
