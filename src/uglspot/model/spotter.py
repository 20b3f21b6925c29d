"""UGLSpotter: the whole network, built from one typed config, and the
registry of named variants.

    frames ─> Backbone (+GSM) ─> f_env ──────────────┐
                 └─ map ─> EntityTokens ─> AAM ─> f_ent ─> fusion ─> biGRU ─> logits
    (the e2e_* variants skip the entity branch: f_env goes straight to the GRU)
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterator, Literal, NamedTuple, Sequence

import torch
from torch import nn

from uglspot.config import from_dict
from uglspot.entities.batch import EntityBatch
from uglspot.errors import UserError
from uglspot.model.backbone import Backbone
from uglspot.model.entity import AdaptiveAttention, EntityTokens
from uglspot.model.fusion import EnvEntityFusion
from uglspot.model.head import GRUHead
from uglspot.model.loss import focal_loss, weighted_cross_entropy
from uglspot.model.packed import Slots
from uglspot.model.release import ReleaseAAM, ReleaseFusion, ReleaseNorm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GATE_SCALE = 10.0
PICK_RULES = ("pick", "pick_ensemble")  # head_mix values that pick one head per class at inference
HEAD_NAMES = ("global", "fused", "entity")  # the mixed heads, in the order of the gate's rows
SIDE_STREAM_SALT = 0x5EED_B0A7_D1CE


@dataclass
class SpotterConfig:
    """Everything needed to rebuild the network (saved beside its weights)."""

    name: str = "ugl_rny008"
    num_classes: int = 1  # K event classes; the model outputs K+1 columns
    backbone: str = "regnety_008"  # any timm model whose blocks expose conv1 / conv_dw
    pretrained: bool = False  # ImageNet weights for the backbone (needs the HF cache or pretrained_file)
    pretrained_file: str | None = None
    shift: Literal["gsm", "tsm", "none"] = "gsm"
    clip_len: int = 100  # frames per clip; shorter clips are zero-padded (shift needs a fixed length)
    use_entities: bool = True
    entity_source: Literal["detector", "backbone"] = "backbone"
    entity_slots: int = 50  # entity slots per frame read from the store
    entity_feat_dim: int = 256  # width of stored detector features (entity_source detector)
    num_entity_classes: int = 6  # detector vocabulary size; 0 = no class embedding
    entity_roi_size: int = 2  # RoIAlign bins per side (entity_source backbone)
    entity_geometry: bool = False  # add the box's place, size and detector score to each entity token
    entity_selection: Literal["hard", "learned"] = "hard"  # AAM: the paper's fixed rule or a trained relevance
    # "release": the env/entity norms, AAM and fusion exactly as the released UGL code computes them
    # (uglspot.model.release; the uglr_* variants, which `uglspot import-ugl` fills); needs hard selection,
    # no class embedding (num_entity_classes 0) and no entity geometry.
    entity_layers: Literal["uglspot", "release"] = "uglspot"
    # Weight of an auxiliary loss on the entity branch alone (a per-frame classifier on f_ent, dropped at
    # inference unless entity_aux_output); 0 = off, as in the paper. It gives the branch a signal of its
    # own (docs/model.md).
    entity_aux: float = 0.0
    # At inference, output the mean of the main head's and that classifier's logits (the normalised
    # geometric mean of their class distributions); training is unchanged, each head learns from its
    # own loss. Needs entity_aux > 0.
    entity_aux_output: bool = False
    # The GRU reads f_env + α·f_ent_env, α a learned scalar that starts at 0 (ReZero): the model starts
    # as the global-only one and lets the fused entities in as they help. Off in the paper (the GRU
    # reads f_ent_env alone). docs/model.md.
    fusion_gate: bool = False
    # Late fusion with a global head (docs/model.md "The global head"): a second GRU head reads f_env
    # alone and learns from its own loss (weight 1) beside the fused head, so the entity branch cannot
    # starve the scene; the output mixes the heads' logits (``head_mix``). Off in the paper.
    global_head: bool = False
    # The entity branch reads f_env (and the backbone map) through a stop-gradient, and its dropout
    # draws do not move the random stream of the global path: the backbone and the global head then
    # train exactly as the global-only model with the same seed. Needs global_head.
    isolate_global: bool = False
    # How the global head's, the fused head's and (with entity_aux_output) the entity classifier's
    # logits make the output: "mean"; "gate": per-class weights over the heads (a softmax), learned
    # from the mixed output's loss on the heads' detached logits, so the gate never changes a head;
    # "pick": the same gate in training, and at inference each class takes its probability from the
    # one head the gate weighs most (with focal loss, its logit); "pick_ensemble": as pick, but a class
    # the gate gives to the fused head or the entity classifier reads the mean of those two heads'
    # logits (the entity side as one ensemble; with one entity-side head, exactly pick).
    head_mix: Literal["mean", "gate", "pick", "pick_ensemble"] = "mean"
    # With a pick rule, who picks each class's head: "gate", the trained gate (it learns from training
    # clips); "validation", each validation pass spots the validation videos once per head and keeps the
    # global head for a class unless another head is better there beyond doubt (engine.head_choice);
    # inference.json keeps the choice. Without a pick rule (or without validation videos), the gate.
    head_choice: Literal["gate", "validation"] = "gate"
    attn_heads: int = 8
    attn_ff_mult: int = 2
    attn_dropout: float = 0.1
    gru_hidden_max: int = 768
    dropout: float = 0.5
    loss: Literal["focal", "ce"] = "focal"
    focal_gamma: float = 5.0
    focal_alpha: float | None = None
    fg_weight: float = 5.0  # foreground weight of the "ce" loss
    # "ce": the mean over frames, or "weights": divided by the frames' target weights (what cross-entropy
    # on class indices does, as the released UGL code trains with label_type integer; set by import-ugl)
    ce_average: Literal["frames", "weights"] = "frames"
    prior: float | None = None  # initialise the classifier so each event class starts at this probability
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")
        if self.clip_len < 1:
            raise ValueError(f"clip_len must be positive, got {self.clip_len}")
        if self.entity_slots < 1 or self.entity_feat_dim < 1 or self.entity_roi_size < 1:
            raise ValueError("entity_slots, entity_feat_dim and entity_roi_size must be positive")
        if self.num_entity_classes < 0:
            raise ValueError(f"num_entity_classes must be >= 0, got {self.num_entity_classes}")
        if len(self.pixel_mean) != 3 or len(self.pixel_std) != 3 or min(self.pixel_std) <= 0:
            raise ValueError("pixel_mean and pixel_std need 3 values each, std positive")
        if self.prior is not None and not 0 < self.prior < 1 / (self.num_classes + 1):
            raise ValueError(f"prior must be in (0, 1/(K+1)) = (0, {1 / (self.num_classes + 1):.3g}), got {self.prior}")
        if self.entity_aux < 0:
            raise ValueError(f"entity_aux must be >= 0, got {self.entity_aux}")
        if self.entity_aux_output and not (self.entity_aux > 0 and self.use_entities):
            raise ValueError("entity_aux_output needs the entity branch's classifier: set entity_aux > 0")
        if self.fusion_gate and not self.use_entities:
            raise ValueError("fusion_gate gates the fused entities: it needs a model with the entity branch")
        if self.global_head and not self.use_entities:
            raise ValueError("global_head adds a head beside the fused one: it needs a model with the entity "
                             "branch (a global-only model already has exactly that head)")
        if self.isolate_global and not self.global_head:
            raise ValueError("isolate_global keeps the global head's path apart: set global_head true")
        if self.head_mix not in ("mean", "gate", *PICK_RULES):
            raise ValueError(f"head_mix must be mean, gate, pick or pick_ensemble, got {self.head_mix!r}")
        if self.head_choice not in ("gate", "validation"):
            raise ValueError(f"head_choice must be gate or validation, got {self.head_choice!r}")
        if self.entity_layers not in ("uglspot", "release"):
            raise ValueError(f"entity_layers must be uglspot or release, got {self.entity_layers!r}")
        if self.entity_layers == "release" and (self.entity_selection != "hard" or self.num_entity_classes
                                                or self.entity_geometry):
            raise ValueError("entity_layers release computes the released UGL layers: it needs entity_selection "
                             "hard, num_entity_classes 0 and entity_geometry false")
        if self.focal_alpha is not None and not 0 <= self.focal_alpha <= 1:
            raise ValueError(f"focal_alpha must be in [0, 1], got {self.focal_alpha}")


# The UGL variants' recipe (docs/model.md, "The UGL recipe"): the paper's modules, with a selection that
# learns, the entity branch's own loss, and a global head whose path trains exactly as the global-only
# model's, mixed per class with the fused and entity heads. The ugl_paper_* variants are the paper's
# architecture as published (fusion before the GRU, hard selection, one head).
UGL_RECIPE: MappingProxyType[str, Any] = MappingProxyType({
    "entity_selection": "learned", "entity_aux": 0.5, "entity_aux_output": True,
    "global_head": True, "isolate_global": True, "head_mix": "pick_ensemble", "head_choice": "validation"})
# The uglr_* variants: the released UGL code's network exactly (docs/model.md, "The released layers"): its
# GLIP features (256-d) without class embedding, its norms, AAM and fusion, one GRU head, and its focal
# loss defaults (α 0.25, γ 2). `uglspot import-ugl` turns its checkpoints into these.
RELEASE_LAYERS: MappingProxyType[str, Any] = MappingProxyType({
    "use_entities": True, "entity_layers": "release", "entity_source": "detector", "num_entity_classes": 0,
    "focal_gamma": 2.0, "focal_alpha": 0.25})
VARIANTS: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType({
    "ugl_rny008": MappingProxyType({"backbone": "regnety_008", "use_entities": True, **UGL_RECIPE}),
    "ugl_rny002": MappingProxyType({"backbone": "regnety_002", "use_entities": True, **UGL_RECIPE}),
    "ugl_paper_rny008": MappingProxyType({"backbone": "regnety_008", "use_entities": True}),
    "ugl_paper_rny002": MappingProxyType({"backbone": "regnety_002", "use_entities": True}),
    "uglr_rny008": MappingProxyType({"backbone": "regnety_008", **RELEASE_LAYERS}),
    "uglr_rny002": MappingProxyType({"backbone": "regnety_002", **RELEASE_LAYERS}),
    "e2e_rny008": MappingProxyType({"backbone": "regnety_008", "use_entities": False, "loss": "ce"}),
    "e2e_rny002": MappingProxyType({"backbone": "regnety_002", "use_entities": False, "loss": "ce"}),
})
DEFAULT_MODEL = "ugl_rny008"


class SpotterOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, K+1)
    attention: torch.Tensor | None  # (B, T, N) weight of each kept entity, None without entities
    entity_logits: torch.Tensor | None = None  # (B, T, K+1) of the entity branch alone (entity_aux > 0)
    global_logits: torch.Tensor | None = None  # (B, T, K+1) of the global head (global_head), training only
    # (B, T, K+1) when the output rule gives probabilities that no single softmax of ``logits`` does
    # (``head_mix: pick`` with cross-entropy); read them through ``UGLSpotter.scores``.
    probs: torch.Tensor | None = None


class UGLSpotter(nn.Module):
    def __init__(self, config: SpotterConfig, load_pretrained: bool = True):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config.backbone, config.shift, config.clip_len,
                                 pretrained=config.pretrained and load_pretrained,
                                 pretrained_file=config.pretrained_file)
        width = self.backbone.feat_dim
        hidden = min(width, config.gru_hidden_max)
        # Built right after the backbone, before any entity module, so that with the same seed it starts
        # from the same weights as the global-only model's head.
        self.global_head = (GRUHead(width, config.num_classes + 1, hidden, config.dropout)
                            if config.global_head else None)
        if self.global_head is not None and config.prior is not None:
            init_prior_bias(self.global_head.fc, config.prior, config.loss)
        # With isolate_global the rest is drawn from a side stream, so the global path's next random draws
        # (its dropout masks) are the global-only model's.
        with side_stream(config.isolate_global):
            if config.use_entities:
                if width % config.attn_heads:
                    raise UserError(f"model {config.name}: backbone width {width} is not divisible by "
                                    f"attn_heads {config.attn_heads}; choose a divisor of {width}")
                in_dim = config.entity_feat_dim if config.entity_source == "detector" else self.backbone.map_dim
                release = config.entity_layers == "release"
                norm = ReleaseNorm if release else nn.LayerNorm
                self.env_proj = nn.Sequential(norm(width), nn.Linear(width, width))
                self.entity_tokens = EntityTokens(config.entity_source, in_dim, width, config.num_entity_classes,
                                                  config.entity_roi_size, config.entity_geometry,
                                                  ReleaseNorm(in_dim) if release else None)
                if release:
                    self.aam = ReleaseAAM(width, config.attn_heads, config.attn_dropout, config.entity_slots)
                    self.fusion = ReleaseFusion(width, config.attn_heads, config.attn_dropout)
                else:
                    self.aam = AdaptiveAttention(width, config.attn_heads, config.attn_ff_mult,
                                                 config.attn_dropout, config.entity_selection)
                    self.fusion = EnvEntityFusion(width, config.attn_heads, config.attn_ff_mult,
                                                  config.attn_dropout)
                self.entity_head = nn.Linear(width, config.num_classes + 1) if config.entity_aux > 0 else None
                self.fusion_scale = nn.Parameter(torch.zeros(())) if config.fusion_gate else None
            self.head = GRUHead(width, config.num_classes + 1, hidden, config.dropout)
            if config.prior is not None:
                init_prior_bias(self.head.fc, config.prior, config.loss)
        # Per-class mixing logits over the mixed heads (zeros: the plain mean at the start).
        self.head_gate = (nn.Parameter(torch.zeros(self.mixed_heads, config.num_classes + 1))
                          if config.global_head and config.head_mix != "mean" else None)
        # The head each class reads at inference (K+1,), when chosen on held-out videos (choose_heads);
        # None: the gate's pick. Not a weight: inference.json keeps it (InferenceSettings.head_choice).
        self.head_choice: torch.Tensor | None = None

    @property
    def mixed_heads(self) -> int:
        """How many heads' logits make the output: global, fused and, with
        entity_aux_output, the entity classifier."""
        return 2 + int(self.config.entity_aux_output) if self.config.global_head else 1

    @property
    def pick_candidates(self) -> tuple[int, ...]:
        """The heads a class can be given under a pick rule, as indices into
        HEAD_NAMES; with pick_ensemble the fused head stands for the entity side."""
        if self.head_gate is None or self.config.head_mix not in PICK_RULES:
            return ()
        return (0, 1) if self.entity_side_ensemble else tuple(range(self.mixed_heads))

    @property
    def entity_side_ensemble(self) -> bool:
        """Whether the fused head and the entity classifier are picked as one
        (pick_ensemble with both heads present)."""
        return self.config.head_mix == "pick_ensemble" and self.mixed_heads > 2

    def head_label(self, head: int) -> str:
        """What a candidate head is called on a progress bar: "global head",
        or "entity side" for the fused head under pick_ensemble, where it
        stands for the fused head and the entity classifier together."""
        return "entity side" if self.entity_side_ensemble and head == 1 else f"{HEAD_NAMES[head]} head"

    def gate_choice(self) -> list[int]:
        """The head the trained gate weighs most for each column (K+1), as a
        candidate (the entity classifier counts as the fused head under
        pick_ensemble, where both read the entity side)."""
        chosen = torch.softmax(GATE_SCALE * self.head_gate.float(), dim=0).argmax(dim=0).tolist()
        return [min(h, max(self.pick_candidates)) for h in chosen]

    def choose_heads(self, heads: Sequence[int] | None) -> None:
        """Make column i read head ``heads[i]`` at inference (a candidate of
        pick_candidates, one per column of the K+1), or the gate's pick (None)."""
        if heads is not None:
            if not self.pick_candidates:
                raise ValueError(f"model {self.config.name} has no heads to choose between (it needs "
                                 "global_head and head_mix pick or pick_ensemble)")
            if len(heads) != self.config.num_classes + 1 or not set(heads) <= set(self.pick_candidates):
                raise ValueError(f"a head choice needs {self.config.num_classes + 1} heads out of "
                                 f"{self.pick_candidates}, got {list(heads)}")
            self.head_choice = torch.tensor(list(heads), dtype=torch.long)
        else:
            self.head_choice = None

    @property
    def feat_dim(self) -> int:
        return self.backbone.feat_dim

    def forward(self, frames: torch.Tensor, entities: EntityBatch | None = None) -> SpotterOutput:
        """frames (B, T, 3, H, W) normalised; entities with (B, T, N) slots or
        None (no entity anywhere) → logits (B, T, K+1), attention (B, T, N)."""
        B, T, C, H, W = frames.shape
        f_env, fmap = self.backbone(frames)  # (B, T, D), (B·T, C', h, w)
        if not self.config.use_entities:
            return SpotterOutput(self.head(f_env), None)
        global_logits = self.global_head(f_env) if self.global_head is not None else None
        isolate = self.config.isolate_global
        with side_stream(isolate and self.training, f_env.device):
            if isolate:  # the backbone learns from the global head's loss alone
                f_env, fmap = f_env.detach(), fmap.detach()
            logits, attention, f_ent = self._entity_branch(f_env, fmap, entities, (B, T, H, W))
            wants_entity = self.entity_head is not None and (self.training or self.config.entity_aux_output)
            entity_logits = self.entity_head(f_ent) if wants_entity else None
        if self.training:
            return SpotterOutput(logits, attention, entity_logits, global_logits)
        if global_logits is not None:
            heads = self._mixed(global_logits, logits, entity_logits)
            if self.config.head_mix == "pick_ensemble" and len(heads) > 2:
                entity_side = (heads[1] + heads[2]) / 2
                heads = [heads[0], entity_side, entity_side]  # picking either entity-side head reads both
            if self.config.head_mix in PICK_RULES and self.config.loss != "focal":
                probs = self.picked_probabilities(heads)
                return SpotterOutput(probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), attention, probs=probs)
            return SpotterOutput(self.mix_heads(heads), attention)
        if entity_logits is None:
            return SpotterOutput(logits, attention)  # no auxiliary head, or inference without its output
        # The mean, not the sum: each head's logits already carry the "no event" prior, and a
        # sum would count it twice (after a short run it hid every event below the threshold).
        return SpotterOutput((logits + entity_logits.to(logits.dtype)) / 2, attention)

    def _entity_branch(self, f_env: torch.Tensor, fmap: torch.Tensor, entities: EntityBatch | None,
                       size: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The fused head's logits (B, T, K+1), the attention (B, T, N) and f_ent (B, T, D)."""
        B, T, H, W = size
        env = self.env_proj(f_env)  # (B, T, D)
        attention = None
        if entities is None:
            f_ent = torch.zeros_like(env)
        else:
            if entities.mask.shape[:2] != (B, T):
                raise ValueError(f"entities cover {tuple(entities.mask.shape[:2])} (B, T) but frames "
                                 f"{(B, T)}")
            slots = Slots.of(entities.mask)  # the filled slots: every per-entity layer runs on them alone
            tokens = self.entity_tokens(entities, fmap, (H, W), self.backbone.map_stride, slots)  # (P, D)
            f_ent, attention = self.aam(env, tokens.to(env.dtype), slots)
        fused = self.fusion([env, f_ent.to(env.dtype)])  # (B, T, D)
        if self.fusion_scale is not None:
            fused = f_env + self.fusion_scale.to(fused.dtype) * fused
        return self.head(fused), attention, f_ent

    def _mixed(self, global_logits: torch.Tensor, logits: torch.Tensor,
               entity_logits: torch.Tensor | None) -> list[torch.Tensor]:
        heads = [global_logits.float(), logits.float()]
        if self.config.entity_aux_output and entity_logits is not None:
            heads.append(entity_logits.float())
        return heads

    def mix_heads(self, heads: list[torch.Tensor]) -> torch.Tensor:
        """The output logits (B, T, K+1) from the heads' logits, each (B, T, K+1):
        their mean, or with the gate a per-class weighted mean (weights over the heads sum to 1)."""
        stacked = torch.stack(heads)  # (S, B, T, K+1)
        if self.head_gate is None:
            return stacked.mean(dim=0)
        return (self.head_weights().view(len(heads), 1, 1, -1) * stacked).sum(dim=0)

    def picked_probabilities(self, heads: list[torch.Tensor]) -> torch.Tensor:
        """(B, T, K+1) probabilities with each event class's column taken from
        the softmax of the head the gate weighs most for it, and "no event"
        the rest (1 − their sum, at least 0).

        Picking the logits instead would put columns of several heads under
        one softmax: the scene classes' probabilities would then also depend
        on the fused head's "no event" and card columns, and a scene class
        taken from the global head would no longer score as the global-only
        model does (long profile, seed 2: scene 85.7 against 87.3)."""
        choice = self.head_weights().argmax(dim=0)  # (K+1,) index of the picked head per class
        probs = torch.stack([self.probabilities(head) for head in heads])  # (S, B, T, K+1)
        index = choice.view(1, 1, 1, -1).expand(1, *probs.shape[1:])
        picked = probs.gather(0, index.to(probs.device)).squeeze(0)
        events = picked[..., 1:]
        return torch.cat([(1 - events.sum(dim=-1, keepdim=True)).clamp_min(0), events], dim=-1)

    def head_weights(self) -> torch.Tensor:
        """(S, K+1) weight of each mixed head per class; columns sum to 1.
        With ``head_mix: pick`` (or ``pick_ensemble``) at inference, 1 for the head the gate weighs most."""
        if self.head_gate is None:
            return torch.full((self.mixed_heads, self.config.num_classes + 1), 1 / self.mixed_heads)
        # Scaled so that Adam, at a spotting run's learning rate, can move a weight across its whole
        # range within a few hundred steps (a raw logit moves about lr per step).
        weights = torch.softmax(GATE_SCALE * self.head_gate.float(), dim=0)
        if self.config.head_mix in PICK_RULES and not self.training:
            chosen = weights.argmax(dim=0) if self.head_choice is None else self.head_choice  # (K+1,)
            return torch.nn.functional.one_hot(chosen, len(weights)).T.to(weights.dtype)
        return weights

    def scores(self, output: SpotterOutput) -> torch.Tensor:
        """The per-class probabilities (B, T, K+1) of an inference output."""
        return output.probs.float() if output.probs is not None else self.probabilities(output.logits.float())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (B, T, K+1) → per-class probabilities (B, T, K+1) as the
        loss reads them: independent sigmoids for focal loss, a softmax over
        the K+1 columns for cross-entropy."""
        if self.config.loss == "focal":
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=-1)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor,
             entity_logits: torch.Tensor | None = None) -> torch.Tensor:
        """logits, targets (B, T, K+1) → scalar loss of the configured kind;
        plus ``entity_aux`` times the same loss of the entity branch's own
        logits when given."""
        total = self._loss(logits, targets)
        if entity_logits is not None:
            total = total + self.config.entity_aux * self._loss(entity_logits.float(), targets)
        return total

    def training_loss(self, output: SpotterOutput, targets: torch.Tensor) -> torch.Tensor:
        """The loss of a training forward's output: the fused (or only) head's,
        plus ``entity_aux`` × the entity classifier's, plus the global head's
        (weight 1), plus with the gate the mixed output's loss on the heads'
        detached logits (it trains the gate alone)."""
        total = self.loss(output.logits.float(), targets, output.entity_logits)
        if output.global_logits is None:
            return total
        total = total + self._loss(output.global_logits.float(), targets)
        if self.head_gate is not None:
            heads = self._mixed(output.global_logits.detach(), output.logits.detach(),
                                None if output.entity_logits is None else output.entity_logits.detach())
            total = total + self._loss(self.mix_heads(heads), targets)
        return total

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "focal":
            return focal_loss(logits, targets, self.config.focal_gamma, self.config.focal_alpha)
        return weighted_cross_entropy(logits, targets, self.config.fg_weight, self.config.ce_average)


@contextlib.contextmanager
def side_stream(enabled: bool, device: torch.device | None = None) -> Iterator[None]:
    """Random draws inside the block come from a stream derived from the
    current state, and the global generator (and ``device``'s, on CUDA) is
    left as it was: code after the block draws what it would have drawn
    without it."""
    if not enabled:
        yield
        return
    cuda = device is not None and device.type == "cuda"
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    with torch.random.fork_rng(devices=devices):
        derived = int(torch.randint(0, 2**62, ())) ^ SIDE_STREAM_SALT
        torch.random.default_generator.manual_seed(derived)
        if cuda:
            torch.cuda.manual_seed(derived)
        yield


def init_prior_bias(fc: nn.Linear, prior: float, loss: str) -> None:
    """Start every event class at probability ``prior`` (RetinaNet's
    initialisation), so the first steps do not spend themselves pushing
    K+1 outputs from 0.5 down to the rare-event rate.

    Focal loss (per-class sigmoids): event columns get bias −log((1−π)/π),
    the "no event" column +log((1−π)/π). Cross-entropy (softmax): biases
    log π for events and log(1 − Kπ) for "no event". The weights are scaled
    down so the bias, not the random projection, sets the start.
    """
    K = fc.out_features - 1
    with torch.no_grad():
        fc.weight.mul_(0.01)
        if loss == "focal":
            logit = math.log((1 - prior) / prior)
            fc.bias.fill_(-logit)
            fc.bias[0] = logit
        else:
            fc.bias.fill_(math.log(prior))
            fc.bias[0] = math.log(1 - K * prior)


def list_models() -> list[str]:
    return list(VARIANTS)


def build_config(name: str, num_classes: int, **overrides: Any) -> SpotterConfig:
    """The config of variant ``name`` with ``overrides`` applied; unknown
    variants and unknown or ill-typed keys are errors."""
    if name not in VARIANTS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(VARIANTS)}")
    overrides.pop("name", None)
    variant = dict(VARIANTS[name])
    if not overrides.get("use_entities", variant.get("use_entities", True)):
        # a UGL variant with its entity branch turned off is the global-only network: the recipe's
        # entity options (unless given here) have nothing to act on
        variant = {k: v for k, v in variant.items() if k not in UGL_RECIPE}
    data = {**variant, **overrides, "name": name, "num_classes": num_classes}
    return from_dict(SpotterConfig, data, where=f"model {name}")


def create_model(name: str = DEFAULT_MODEL, num_classes: int = 1, **overrides: Any) -> UGLSpotter:
    """A new, randomly initialised (ImageNet backbone if ``pretrained``) spotter."""
    return UGLSpotter(build_config(name, num_classes, **overrides))

