from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_LABELS = Path(os.environ.get("UGLSPOT_SHARED", REPO.parent / "shared")) / "data" / "labels"


@pytest.fixture(scope="session")
def shared_labels() -> Path:
    """The real label files of six datasets (read-only), beside the repository."""
    if not SHARED_LABELS.is_dir():
        pytest.skip(f"real label files not found at {SHARED_LABELS}; set UGLSPOT_SHARED")
    return SHARED_LABELS
