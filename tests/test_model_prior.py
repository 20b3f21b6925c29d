"""Prior-bias initialisation of the classifier (RetinaNet's −log((1−π)/π)):
every event class starts at probability π, and from that start a tiny
spotter still fits a few clips (the overfit check)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _model_helpers import one_thread  # noqa: F401  (autouse fixture)
from uglspot.model import create_model

K = 4
PRIOR = 0.01


def _probabilities(model, frames):
    logits = model(frames).logits  # (B, T, K+1)
    return torch.sigmoid(logits) if model.config.loss == "focal" else logits.softmax(-1)


@pytest.mark.parametrize("loss", ["focal", "ce"])
def test_every_event_class_starts_at_the_prior(loss):
    torch.manual_seed(0)
    model = create_model("e2e_rny002", K, clip_len=8, loss=loss, prior=PRIOR).eval()
    with torch.no_grad():
        probs = _probabilities(model, torch.randn(2, 8, 3, 32, 32))
    torch.testing.assert_close(probs[..., 1:], torch.full_like(probs[..., 1:], PRIOR), atol=2e-3, rtol=0)
    expected_background = 1 - PRIOR if loss == "focal" else 1 - K * PRIOR
    torch.testing.assert_close(probs[..., 0], torch.full_like(probs[..., 0], expected_background), atol=2e-3, rtol=0)


def _overfit(prior: float | None, seed: int, steps: int = 25) -> tuple[float, float]:
    """A tiny spotter fits two fixed clips with focal loss (γ = 5) for
    ``steps`` steps; returns the probability of the true class at the event
    frames (lowest) and the highest event-class probability on background frames."""
    torch.manual_seed(seed)
    model = create_model("e2e_rny002", K, clip_len=8, loss="focal", focal_gamma=5.0, prior=prior)
    frames = torch.randn(2, 8, 3, 32, 32)
    labels = torch.zeros(2, 8, dtype=torch.long)
    labels[0, 3], labels[1, 5] = 2, 4  # rare events among background frames
    targets = F.one_hot(labels, K + 1).float()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = model.loss(model(frames).logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(frames).logits)  # (B, T, K+1)
    event = labels > 0
    true_at_events = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)[event]
    return float(true_at_events.min()), float(probs[..., 1:][~event].max())


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
def test_a_spotter_started_at_the_prior_still_fits_the_overfit_clips(seed):
    """Starting every event class at π (not at 0.5) must not stop the model
    from learning: the two clips' events rise above 0.5 and no background
    frame does, as they do from the default start."""
    event_prior, background_prior = _overfit(PRIOR, seed, steps=40)
    assert event_prior > 0.5 and background_prior < 0.5
