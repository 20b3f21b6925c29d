"""Throughput (images/s) of the entity detectors through uglspot's wrapper
(uint8 720p frames in, detections out) and of the bare model forward on the
same batch. Prints one JSON line per figure.

The models are the real architectures of the backends' default hub models
(Grounding DINO tiny: Swin-T and BERT-base; OWLv2 base/16 at 960×960) with
random weights, built from their transformers configs and saved with a
tokenizer and processor, so no download is needed; speed does not depend on
the weights. ``--tiny`` builds the tests' tiny models instead (dry runs).

    PYTHONPATH=src python benchmarks/detector_speed.py [--detectors grounding-dino owlv2] [--dtypes bfloat16 float16]

``decode_speed.py`` and ``gpu_suite.py`` use the functions below.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def emit(figure: str, value, unit: str, **context) -> None:
    print(json.dumps({"figure": figure, "value": value, "unit": unit, **context}), flush=True)


def bert_vocab(size: int) -> dict[str, int]:
    """A WordPiece vocabulary of ``size`` entries with BERT's special tokens at
    BERT's ids (Grounding DINO's text masks rely on them) and the prompt words."""
    vocab = {f"[unused{i}]": i for i in range(size)}
    for index, token in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]",
                         1012: ".", 1029: "?"}.items():
        vocab.pop(f"[unused{index}]")
        vocab[token] = index
    for offset, word in enumerate(["ball", "yellow", "red", "card", "goal", "referee", "player"]):
        vocab.pop(f"[unused{2000 + offset}]")
        vocab[word] = 2000 + offset
    return vocab


def clip_byte_vocab() -> dict[str, int]:
    """A byte-level CLIP vocabulary without merges: every prompt spells out
    character by character, enough to drive OWLv2's text tower."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = sorted(set(bytes_to_unicode().values()))
    vocab = {"<|pad|>": 0}
    for suffix in ("", "</w>"):
        for char in chars:
            vocab[char + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def write_random_detector(name: str, directory: Path, tiny: bool = False, device: str = "cpu") -> Path:
    """Save a randomly initialised ``name`` backend model (``grounding-dino``
    or ``owlv2``) with its processor into ``directory``; returns it."""
    if tiny:
        if str(REPO / "tests") not in sys.path:
            sys.path.insert(0, str(REPO / "tests"))
        from _detector_helpers import make_tiny_grounding_dino, make_tiny_owlv2

        return {"grounding-dino": make_tiny_grounding_dino, "owlv2": make_tiny_owlv2}[name](directory)
    torch.manual_seed(0)
    if name == "grounding-dino":
        from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                                  GroundingDinoImageProcessor, GroundingDinoProcessor)

        config = GroundingDinoConfig()  # grounding-dino-tiny: Swin-T, BERT-base, 900 queries
        with torch.device(device):  # random init on the GPU is seconds, not a minute
            GroundingDinoForObjectDetection(config).save_pretrained(directory)
        tokenizer = BertTokenizer(vocab=bert_vocab(config.text_config.vocab_size))
        processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(), tokenizer=tokenizer)
    elif name == "owlv2":
        from transformers import (CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor,
                                  Owlv2Processor)

        vocab = clip_byte_vocab()
        ids = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                   pad_token_id=vocab["<|endoftext|>"])
        # owlv2-base-patch16-ensemble: ViT-B/16 at 960×960 (the config's default side is 768)
        config = Owlv2Config(text_config=ids, vision_config=dict(image_size=960, patch_size=16))
        with torch.device(device):
            Owlv2ForObjectDetection(config).save_pretrained(directory)
        tokenizer = CLIPTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")
        processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 960, "width": 960}),
                                   tokenizer=tokenizer)
    else:
        raise ValueError(f"unknown detector {name!r}; choose grounding-dino or owlv2")
    processor.save_pretrained(directory)
    return directory


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_detector(name: str, model_dir: Path, device: str, batch: int, iters: int, dtype: str = "auto",
                     image_size: tuple[int, int] | None = None, frame_size: tuple[int, int] = (720, 1280),
                     **extra) -> float:
    """Time ``detect`` (wrapper) and the bare forward of one backend on a
    batch of random uint8 frames; emits both and their ratio, returns the
    wrapper's images/s."""
    from uglspot.entities.detect import DetectorConfig, create_detector

    detector = create_detector(DetectorConfig(name=name, model=str(model_dir), image_size=image_size, dtype=dtype),
                               device)
    frames = torch.randint(0, 256, (batch, 3, *frame_size), dtype=torch.uint8)
    cuda = detector.device.type == "cuda"
    if cuda:
        frames = frames.pin_memory()
    pixels = detector.preprocess(frames)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(detector.device)

    def wrapper() -> None:
        detector.detect(frames)
        sync()

    @torch.inference_mode()
    def bare() -> None:
        detector.forward(pixels)
        sync()

    for fn in (wrapper, bare):
        fn()  # warm-up (cuDNN autotune, allocator)
    t_wrap = min(timed(wrapper) for _ in range(iters))
    t_bare = min(timed(bare) for _ in range(iters))
    context = {"detector": name, "input_size": list(detector.input_size),
               "input": f"{pixels.shape[-2]}x{pixels.shape[-1]}",
               "frames": f"{frame_size[0]}x{frame_size[1]}", "batch": batch, "dtype": str(detector.dtype).split(".")[-1],
               "device": torch.cuda.get_device_name(detector.device) if cuda else "cpu", "best_of": iters, **extra}
    emit("detector_images_per_s", round(batch / t_wrap, 2), "images/s", mode="wrapper", **context)
    emit("detector_images_per_s", round(batch / t_bare, 2), "images/s", mode="bare_forward", **context)
    emit("detector_wrapper_vs_bare", round(t_bare / t_wrap, 3), "ratio (>=0.9 is the target)", **context)
    return batch / t_wrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", nargs="+", default=["grounding-dino", "owlv2"], choices=["grounding-dino", "owlv2"])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16"], choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--batch", type=int, default=8, help="frames per batch (detect's default: 8)")
    parser.add_argument("--iters", type=int, default=5, help="timed batches; the best counts")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny models (dry runs)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="uglspot-detector-") as tmp:
        for name in args.detectors:
            model_dir = write_random_detector(name, Path(tmp) / name, args.tiny, args.device)
            for dtype in args.dtypes:
                measure_detector(name, model_dir, args.device, args.batch, args.iters, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
