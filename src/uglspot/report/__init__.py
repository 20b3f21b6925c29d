"""The HTML report: per-class AP beside each variant, precision-recall
curves, score timelines against ground truth, and an event gallery with the
entity attention drawn on each frame. Input layout: ``report.inputs``."""

from uglspot.report.html import build_report
from uglspot.report.inputs import ReportInputs, load_inputs

__all__ = ["ReportInputs", "build_report", "load_inputs"]
