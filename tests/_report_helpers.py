"""A small run directory for report tests, and a headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from uglspot.data.labels import Event, Video, write_e2e_labels

EVIL = "Goal <script>window.pwned = 1</script>"
CLASSES = ["Throw-in", "Yellow card", EVIL]
WIDTH, HEIGHT, FPS, FRAMES = 96, 64, 8.0, 48


def write_video(path: Path, seed: int) -> None:
    """A short synthetic broadcast clip written with PyAV."""
    from uglspot import synth as S

    cfg = S.SynthConfig(width=WIDTH, height=HEIGHT, fps=FPS, minutes=FRAMES / FPS / 60)
    script = S.simulate_match(cfg, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = S.VideoWriter(path, WIDTH, HEIGHT, FPS)
    for i in range(FRAMES):
        writer.write(S.render_frame(script, i, WIDTH, HEIGHT).image)
    writer.close()


def make_run(root: Path, with_videos: bool = True) -> Path:
    """RUN/ with truth, class.txt, two variants (one with entity attention)
    and, optionally, the videos."""
    truth = [
        Video("test_000", FRAMES, FPS, [Event(10, "Throw-in"), Event(30, "Yellow card"), Event(40, EVIL)],
              WIDTH, HEIGHT),
        Video("test_001", FRAMES, FPS, [Event(5, "Throw-in"), Event(25, "Throw-in")], WIDTH, HEIGHT),
    ]
    data = root / "dataset"
    data.mkdir(parents=True)
    (data / "class.txt").write_text("\n".join(CLASSES) + "\n")
    write_e2e_labels(truth, data / "test.json")
    rng = np.random.default_rng(0)
    for variant, entities in (("e2e_tiny", False), ("ugl_tiny", True)):
        for video in truth:
            events = []
            for event in video.events:
                for shift, score in ((0, rng.uniform(0.5, 0.9)), (7, rng.uniform(0.05, 0.4))):
                    frame = min(event.frame + shift, FRAMES - 1)
                    record = {"frame": frame, "time": frame / FPS, "label": event.label, "score": float(score)}
                    if entities:
                        record["entities"] = [
                            {"box": [0.1, 0.2, 0.3, 0.5], "class": "referee", "weight": 0.6},
                            {"box": [0.5, 0.1, 0.56, 0.2], "class": "yellow card", "weight": 0.3},
                            {"box": [0.7, 0.6, 0.8, 0.9], "class": "<b>player</b>", "weight": 0.1},
                        ]
                    events.append(record)
            out = root / "predictions" / variant / video.video / "events.json"
            out.parent.mkdir(parents=True)
            out.write_text(json.dumps({"video": video.video, "fps": FPS, "num_frames": FRAMES, "events": events}))
    manifest = {"truth": "dataset/test.json", "classes": "dataset/class.txt", "videos": "dataset/videos"}
    (root / "report-inputs.json").write_text(json.dumps(manifest))
    if with_videos:
        for k, video in enumerate(truth):
            write_video(data / "videos" / f"{video.video}.mp4", seed=k)
    return root


def ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages when missing."""
    chromium, driver = shutil.which("chromium") or "/usr/bin/chromium", "/usr/bin/chromedriver"
    if not Path(chromium).exists() or not Path(driver).exists():
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True,
                           capture_output=True, timeout=1200)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.fail(f"headless Chromium is needed for the report test and apt-get could not install "
                        f"chromium and chromium-driver ({exc}); install them and rerun")
    return chromium, driver


def headless_chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,2000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def png_text(png: bytes) -> dict[str, str]:
    """The text chunks of a PNG (what ``report.plots`` records beside the picture)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return dict(image.text)


def png_pixels(png: bytes) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a PNG."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def png_dpi(png: bytes) -> float:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return float(image.info["dpi"][0])
