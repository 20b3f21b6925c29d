"""The use cases of uglspot: the public Python API.

One module per workflow, each a function with typed arguments that returns a
result object (what was written, the numbers, the failures) and prints
nothing; the ``uglspot`` commands parse arguments, call one of these and
print what it returns. Heavy libraries (torch, av) are imported inside the
functions, so importing this package is instant.
"""

from uglspot.app.clips import cut_highlights
from uglspot.app.convert import e2e_to_soccernet_dirs, predictions_to_soccernet_dirs, soccernet_to_e2e_file
from uglspot.app.demo import PROFILES, DemoOutcome, DemoProfile, demo_profile, run_demo
from uglspot.app.detect import detect_videos, detector_config
from uglspot.app.e2e_import import import_e2e_spot
from uglspot.app.evaluate import evaluate_predictions, evaluate_soccernet_games
from uglspot.app.export import export_model
from uglspot.app.frames import cache_frames
from uglspot.app.predict import predict_split
from uglspot.app.report import write_report
from uglspot.app.spot import spot_files
from uglspot.app.stats import label_stats
from uglspot.app.synth import render_dataset
from uglspot.app.train import train_from_config
from uglspot.app.ugl_import import import_ugl

__all__ = [
    "PROFILES", "DemoOutcome", "DemoProfile", "cache_frames", "cut_highlights", "demo_profile", "detect_videos",
    "detector_config", "e2e_to_soccernet_dirs", "evaluate_predictions", "evaluate_soccernet_games", "export_model",
    "import_e2e_spot", "import_ugl",
    "label_stats", "predict_split", "predictions_to_soccernet_dirs", "render_dataset", "run_demo",
    "soccernet_to_e2e_file", "spot_files", "train_from_config", "write_report",
]
