"""Every speed target of uglspot measured in one run on one GPU, in at most
eight minutes. Prints one JSON line per figure (also written to ``--out``)
and a closing ``suite.summary`` line that sets the figures against the
targets.

    PYTHONPATH=src PYTHONUNBUFFERED=1 python benchmarks/gpu_suite.py --out gpu_suite.jsonl
    PYTHONPATH=src python benchmarks/gpu_suite.py --dry-run    # the same path, tiny sizes, CPU

Sections, in order (``--sections`` picks some):

- ``train``: training frames/s (forward, backward, AdamW) and peak memory of
  e2e_rny008 and ugl_rny008, 224×398, B=8, T=100, 50 entity slots, AMP bf16,
  channels-last, and the entity branch's time ratio (``model_speed.py``);
- ``infer``: inference frames/s of both at B = 8, 16, 32 and the best B;
- ``parts``: where a training and an inference step of ugl_rny008 (each
  entity source and selection) and of e2e_rny008 spend their time, part by
  part (backbone, RoI pooling, entity tokens, selection, entity encoder,
  fusion, GRU, loss), at the ``train`` sizes (``model_parts.py``);
- ``detectors``: images/s of Grounding DINO tiny and OWLv2 base/16 at
  ``detect``'s default sizes, random weights, bf16 and fp16
  (``detector_speed.py``);
- ``spot``: seconds per stage of the ``spot`` path (decode, detect, model,
  post) on a generated 720p 25 fps video (5 minutes), projected to one hour
  (``pipeline_speed.py``);
- ``infer_compiled``, ``train_compiled``: the model figures through
  ``torch.compile`` (inference at the best eager B); last, as compiling
  costs the most time (inference first: its target needs it most).

Each section is guarded: a failure prints a ``suite.error`` line and the
suite goes on. A global time budget (``--budget-s``) skips the sections
that no longer fit (``suite.skipped``) and stops one that outruns it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import platform
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

BENCHMARKS = Path(__file__).resolve().parent
if str(BENCHMARKS) not in sys.path:  # run as a script it is there already
    sys.path.insert(0, str(BENCHMARKS))

import detector_speed  # noqa: E402
import model_parts  # noqa: E402
import model_speed  # noqa: E402
import pipeline_speed  # noqa: E402

SECTIONS = ("train", "infer", "parts", "detectors", "spot", "infer_compiled", "train_compiled")
TARGETS = {  # docs/performance.md's targets (issue 14); one H200
    "ugl_train_frames_per_s": (">=", 1600),
    "ugl_infer_frames_per_s": (">=", 12000),
    "entity_branch_time_ratio_train": ("<=", 1.10),
    "ugl_train_peak_gib": ("<=", 40),
    "spot_one_hour_s": ("<=", 120),
}


@dataclass(frozen=True)
class Sizes:
    """What each section runs at: the GPU figures, or tiny ones for a dry run on CPU."""

    device: str
    models: tuple[str, ...]
    model_args: tuple[str, ...]  # model_speed.py's size and step options
    parts_args: tuple[str, ...]  # model_parts.py's models, sizes and rounds
    infer_batches: tuple[int, ...]
    compile_backend: str
    detector_batch: int
    detector_iters: int
    detector_dtypes: tuple[str, ...]
    detector_frame: tuple[int, int]  # (H, W) of the frames fed to the detectors
    tiny_detectors: bool
    grounding_dino_small: tuple[int, int]  # a second, smaller Grounding DINO input (shortest, longest edge)
    spot_args: tuple[str, ...]  # pipeline_speed.py's video and spot options
    needs_s: dict[str, float] = field(default_factory=dict)  # a section starts only with this much left


def gpu_sizes(device: str, spot_minutes: float) -> Sizes:
    return Sizes(
        device=device, models=("e2e_rny008", "ugl_rny008"),
        model_args=("--batch", "8", "--frames", "100", "--height", "224", "--width", "398", "--slots", "50",
                    "--warmup", "3", "--iters", "10", "--amp-dtype", "bf16"),
        parts_args=("--backbones", "rny008", "--batch", "8", "--frames", "100", "--height", "224", "--width", "398",
                    "--slots", "50", "--warmup", "2", "--rounds", "3", "--amp-dtype", "bf16"),
        infer_batches=(8, 16, 32), compile_backend="inductor",
        detector_batch=8, detector_iters=5, detector_dtypes=("bfloat16", "float16"), detector_frame=(720, 1280),
        tiny_detectors=False, grounding_dino_small=(448, 800),
        spot_args=("--minutes", str(spot_minutes), "--width", "1280", "--height", "720", "--fps", "25",
                   "--model", "ugl_rny008", "--clip-len", "100", "--infer-batch", "4", "--detector-batch", "8"),
        needs_s={"train": 40, "infer": 40, "parts": 60, "detectors": 60, "spot": 90, "infer_compiled": 60,
                 "train_compiled": 120})


def dry_run_sizes() -> Sizes:
    return Sizes(
        device="cpu", models=("e2e_rny002", "ugl_rny002"),
        model_args=("--batch", "1", "--frames", "4", "--height", "32", "--width", "64", "--slots", "4",
                    "--warmup", "0", "--iters", "1", "--classes", "3"),
        parts_args=("--backbones", "rny002", "--batch", "1", "--frames", "4", "--height", "32", "--width", "64",
                    "--slots", "4", "--warmup", "0", "--rounds", "1", "--classes", "3", "--feat-dim", "8"),
        infer_batches=(1, 2), compile_backend="none",
        detector_batch=2, detector_iters=1, detector_dtypes=("float32",), detector_frame=(90, 160),
        tiny_detectors=True, grounding_dino_small=(48, 80),
        spot_args=("--minutes", "0.04", "--width", "160", "--height", "90", "--fps", "25",
                   "--spot-width", "64", "--spot-height", "32", "--model", "ugl_rny002", "--clip-len", "8",
                   "--infer-batch", "2", "--detector-batch", "2"))


class BudgetExceeded(BaseException):
    """Raised by the alarm when the suite's time is up; a BaseException so the
    library's ``except Exception`` cannot swallow it."""


class JsonLines(io.TextIOBase):
    """A stdout for one section: each JSON object printed (the benchmarks'
    figures) is tagged with the section and handed to the suite; any other
    line goes to stderr, so stdout stays one JSON object a line."""

    def __init__(self, suite: "Suite", section: str):
        self.suite, self.section, self.pending = suite, section, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.suite.stream.flush()

    def close_section(self) -> None:
        if self.pending:
            self._line(self.pending)
            self.pending = ""

    def _line(self, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            self.suite.emit({"section": self.section, **record})
        elif line.strip():
            print(line, file=sys.stderr)


class Suite:
    """Runs sections under one time budget; keeps every record for the summary."""

    def __init__(self, budget_s: float, out: Path | None):
        self.start = time.perf_counter()
        self.deadline = self.start + budget_s
        self.records: list[dict] = []
        self.outcome: dict[str, str] = {}
        self.out = out
        self.stream = sys.stdout  # where the lines go while sections redirect sys.stdout
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("")

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def emit(self, record: dict) -> None:
        self.records.append(record)
        line = json.dumps(record)
        self.stream.write(line + "\n")
        self.stream.flush()
        if self.out is not None:
            with self.out.open("a") as handle:
                handle.write(line + "\n")

    def run(self, section: str, needs_s: float, body: Callable[[], None]) -> None:
        left = self.left()
        if left < needs_s:
            self.outcome[section] = "skipped"
            self.emit({"figure": "suite.skipped", "section": section, "seconds_left": round(left, 1),
                       "needs_s": needs_s, "reason": "time budget: not enough left to start this section"})
            return
        start, cpu = time.perf_counter(), time.process_time()
        sink = JsonLines(self, section)

        def out_of_time(signum, frame):
            raise BudgetExceeded()

        previous = signal.signal(signal.SIGALRM, out_of_time)
        signal.setitimer(signal.ITIMER_REAL, max(left, 0.01))
        try:
            with contextlib.redirect_stdout(sink):
                body()
            self.outcome[section] = "done"
        except BudgetExceeded:
            self.outcome[section] = "stopped"
            self.emit({"figure": "suite.error", "section": section, "error": "time budget ran out; section stopped",
                       "seconds": round(time.perf_counter() - start, 1)})
        except (Exception, SystemExit) as exc:  # one failure must not end the suite
            self.outcome[section] = "error"
            frame = where(exc)
            message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            self.emit({"figure": "suite.error", "section": section, "error": f"{type(exc).__name__}: {message}",
                       "where": f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}",
                       "seconds": round(time.perf_counter() - start, 1)})
            traceback.print_exc(file=sys.stderr)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            sink.close_section()
            release_memory()
        self.emit({"figure": "suite.section", "section": section, "outcome": self.outcome[section],
                   "value": round(time.perf_counter() - start, 1), "unit": "s",
                   "cpu_s": round(time.process_time() - cpu, 1)})

    def find(self, section: str, figure: str, **match) -> list[dict]:
        return [r for r in self.records if r.get("section") == section and r.get("figure") == figure
                and all(r.get(k) == v for k, v in match.items())]


def where(exc: BaseException) -> traceback.FrameSummary:
    """The innermost frame of the traceback in this repository's code (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(BENCHMARKS.parent)]
    return (ours or frames)[-1]


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def model_section(sizes: Sizes, phase: str, infer_batches: tuple[int, ...] = ()) -> None:
    argv = ["--models", *sizes.models, *sizes.model_args, "--phases", phase, "--device", sizes.device,
            "--compile-backend", sizes.compile_backend]
    if infer_batches:
        argv += ["--infer-batches", *map(str, infer_batches)]
    model_speed.main(argv)
    if phase.endswith("_compiled"):
        torch._dynamo.reset()  # the compiled graphs of one section are not needed by the next


def best_infer_batch(suite: Suite, sizes: Sizes) -> int:
    """The eager inference batch with the most frames/s for the UGL model (or the middle size)."""
    found = suite.find("infer", "infer_best_batch", model=sizes.models[-1])
    return int(found[0]["value"]) if found else sizes.infer_batches[len(sizes.infer_batches) // 2]


def detector_section(sizes: Sizes, work: Path, detector_dirs: dict[str, Path]) -> None:
    for name in ("grounding-dino", "owlv2"):
        directory = detector_dirs.get(name) or detector_speed.write_random_detector(
            name, work / name, sizes.tiny_detectors)
        detector_dirs[name] = directory
        for dtype in sizes.detector_dtypes:
            detector_speed.measure_detector(name, directory, sizes.device, sizes.detector_batch,
                                            sizes.detector_iters, dtype, frame_size=sizes.detector_frame)
    # the design notes budget an hour's detection at 448 px: the smaller input, first dtype
    detector_speed.measure_detector("grounding-dino", detector_dirs["grounding-dino"], sizes.device,
                                    sizes.detector_batch, sizes.detector_iters, sizes.detector_dtypes[0],
                                    image_size=sizes.grounding_dino_small, frame_size=sizes.detector_frame,
                                    note="not detect's default size")


def spot_section(suite: Suite, sizes: Sizes, work: Path, detector_dirs: dict[str, Path]) -> None:
    """The spot path's stages on a generated video, then their projection to one hour."""
    name = "grounding-dino"
    if name not in detector_dirs:
        detector_dirs[name] = detector_speed.write_random_detector(name, work / name, sizes.tiny_detectors)
    args = pipeline_speed.build_parser().parse_args(
        [*sizes.spot_args, "--detector", name, "--detector-model", str(detector_dirs[name]),
         "--device", sizes.device, "--skip-train"])
    work.mkdir(parents=True, exist_ok=True)
    video = work / "match.mp4"
    start = time.perf_counter()
    num_frames = pipeline_speed.write_video(video, args.minutes, args.fps, args.width, args.height)
    pipeline_speed.emit("generate_video", time.perf_counter() - start, "s", frames=num_frames,
                        size=[args.width, args.height], fps=args.fps)
    pipeline_speed.spot_stages(args, video, work, torch.device(sizes.device))
    stages = {}
    for stage in ("decode", "detect", "model", "post"):
        found = suite.find("spot", f"spot.{stage}")
        if found:
            stages[stage] = found[-1]["value"]
    scale = 60 / args.minutes
    hour = {stage: round(seconds * scale, 2) for stage, seconds in stages.items()}
    pipeline_speed.emit("spot.one_hour_projection", sum(hour.values()), "s", stages=hour,
                        measured_minutes=args.minutes, scale=round(scale, 3),
                        note="each stage's seconds on the measured video times (60 / minutes); "
                             "decode and detect grow with the video's length, model and post too")


def summary(suite: Suite, sizes: Sizes) -> dict:
    ugl, e2e = sizes.models[-1], sizes.models[0]

    def best(section: str, figure: str, model: str) -> float | None:
        values = [r["value"] for r in suite.find(section, figure, model=model) if r.get("value") is not None]
        return max(values) if values else None

    train = [v for v in (best("train", "train_frames_per_s", ugl), best("train_compiled", "train_frames_per_s", ugl))
             if v is not None]
    infer = [v for v in (best("infer", "infer_frames_per_s", ugl), best("infer_compiled", "infer_frames_per_s", ugl))
             if v is not None]
    ratio = suite.find("train", "entity_branch_time_ratio", model=ugl)
    peak = suite.find("train", "train_peak_memory", model=ugl)
    hour = suite.find("spot", "spot.one_hour_projection")
    figures = {
        "ugl_train_frames_per_s": max(train) if train else None,
        "ugl_infer_frames_per_s": max(infer) if infer else None,
        "entity_branch_time_ratio_train": ratio[0]["value"] if ratio else None,
        "ugl_train_peak_gib": peak[0]["value"] if peak else None,
        "spot_one_hour_s": hour[0]["value"] if hour else None,
    }
    targets = {}
    for key, value in figures.items():
        op, goal = TARGETS[key]
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        targets[key] = {"value": value, "target": f"{op} {goal}", "met": met}
    e2e_train = best("train", "train_frames_per_s", e2e)
    return {"figure": "suite.summary", "device": device_name(sizes.device), "models": list(sizes.models),
            "targets": targets, "e2e_train_frames_per_s": e2e_train, "sections": suite.outcome,
            "seconds": round(time.perf_counter() - suite.start, 1),
            "note": "targets are for one H200 (docs/performance.md); a dry run's figures are not comparable"}


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"


def machine_record(sizes: Sizes, budget_s: float, dry_run: bool) -> dict:
    import timm
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
                "transformers": transformers.__version__, "cuda": torch.version.cuda}
    try:
        import av

        versions["av"] = av.__version__
    except ImportError:
        versions["av"] = None
    return {"figure": "suite.machine", "device": device_name(sizes.device), "dry_run": dry_run,
            "budget_s": budget_s, **versions}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="seconds for all sections (default 480); later sections are skipped, not overrun")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--spot-minutes", type=float, default=5.0,
                        help="length of the generated video the spot path is timed on (default 5)")
    parser.add_argument("--dry-run", action="store_true", help="the same path at tiny sizes on CPU (CI)")
    parser.add_argument("--device", default="cuda", help="default cuda; a dry run uses cpu")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dry_run:
        sizes = dry_run_sizes()
        torch.set_num_threads(1)  # tiny tensors: more threads only contend on a shared CI machine
    else:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print("gpu_suite: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU machine, "
                  "or pass --dry-run to check the suite on CPU", file=sys.stderr)
            return 2
        sizes = gpu_sizes(args.device, args.spot_minutes)
        torch.backends.cudnn.benchmark = True
    suite = Suite(args.budget_s, args.out)
    suite.emit(machine_record(sizes, args.budget_s, args.dry_run))
    detector_dirs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="uglspot-gpu-suite-") as tmp:
        work = Path(tmp)
        bodies: dict[str, Callable[[], None]] = {
            "train": lambda: model_section(sizes, "train"),
            "infer": lambda: model_section(sizes, "infer", sizes.infer_batches),
            "parts": lambda: model_parts.main([*sizes.parts_args, "--device", sizes.device]),
            "detectors": lambda: detector_section(sizes, work / "detectors", detector_dirs),
            "spot": lambda: spot_section(suite, sizes, work / "spot", detector_dirs),
            "train_compiled": lambda: model_section(sizes, "train_compiled"),
            "infer_compiled": lambda: model_section(sizes, "infer_compiled",
                                                    (best_infer_batch(suite, sizes),)),
        }
        for section in SECTIONS:
            if section in args.sections:
                suite.run(section, sizes.needs_s.get(section, 0.0), bodies[section])
    suite.emit(summary(suite, sizes))
    return 0 if all(outcome == "done" for outcome in suite.outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
