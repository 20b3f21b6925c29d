"""A GRU head's training step on the CPU: the forward and backward of the
one-layer bidirectional GRU through ``uglspot.model.gru.run_gru`` (weight
gradients once per clip) against PyTorch's ``nn.GRU`` (one outer product per
frame and direction), in alternating rounds on the same weights and inputs.
Prints one JSON line per shape.

    PYTHONPATH=src python benchmarks/gru_speed.py [--threads 1] [--rounds 9]

Shapes (width, batch, frames): the model benchmarks' clip (B = 1, T = 16) and
the demo's training batch (4 clips of 32 frames), at the GRU widths of
RegNet-Y 800MF (768) and 200MF (368).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from model_speed import emit, median, timed
from uglspot.model.gru import by_clip, run_gru

SHAPES = [(768, 1, 16), (768, 4, 32), (368, 1, 16), (368, 4, 32)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for width, batch, frames in SHAPES:
        torch.manual_seed(0)
        gru = nn.GRU(width, width, batch_first=True, bidirectional=True)
        x = torch.randn(batch, frames, width, requires_grad=True)
        grad_out = torch.randn(batch, frames, 2 * width)
        assert by_clip(gru, x)
        ways = {"per_clip": lambda: run_gru(gru, x), "pytorch": lambda: gru(x)[0]}

        def step(forward) -> None:
            gru.zero_grad(set_to_none=True)
            x.grad = None
            forward().backward(grad_out)

        seconds: dict[str, list[float]] = {way: [] for way in ways}
        for round_index in range(args.rounds + 1):  # the first round allocates: not timed
            for way, forward in ways.items():
                elapsed = timed(lambda: step(forward), torch.device("cpu"))
                if round_index:
                    seconds[way].append(elapsed)
        ms = {way: median(times) * 1000 for way, times in seconds.items()}
        emit(figure="gru_train_step_ms", width=width, batch=batch, frames=frames, per_clip=round(ms["per_clip"], 1),
             pytorch=round(ms["pytorch"], 1), speedup=round(ms["pytorch"] / ms["per_clip"], 2),
             threads=args.threads, rounds=args.rounds, unit="ms (median over rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
