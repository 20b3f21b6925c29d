"""One frame of a simulated match as pixels, with the true boxes of every
object a detector could find."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from uglspot.synth import draw
from uglspot.synth.config import BALL, GOAL, PLAYER, RED, REFEREE, YELLOW
from uglspot.synth.simulator import MatchScript


@dataclass
class RenderedFrame:
    image: np.ndarray  # (H, W, 3) uint8
    boxes: np.ndarray  # (n, 4) float pixel xyxy of visible objects, clipped to the frame
    cls: np.ndarray  # (n,) int, ENTITY_VOCABULARY index
    crowd: np.ndarray  # (H, W) int crowd palette index, -1 off the stands


def _visible(box: np.ndarray, W: int, H: int, min_fraction: float = 0.4) -> np.ndarray | None:
    clipped = np.array([max(box[0], 0), max(box[1], 0), min(box[2], W), min(box[3], H)], dtype=np.float64)
    area = max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6)
    inner = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
    return clipped if inner >= min_fraction * area and inner > 0 else None


def render_frame(script: MatchScript, i: int, width: int, height: int) -> RenderedFrame:
    """Draw frame ``i`` of ``script`` and list the objects a detector could find."""
    camera = draw.Camera(script.camera_target[i], float(script.camera_view[i]), width, height)
    image, crowd = draw.render_background(camera, script.salt, i)
    boxes: list[np.ndarray] = []
    classes: list[int] = []

    def keep(box: np.ndarray | None, cls: int) -> None:
        if box is None:
            return
        visible = _visible(box, width, height)
        if visible is not None:
            boxes.append(visible)
            classes.append(cls)

    for goal_frame, net in draw.goal_boxes(camera):
        keep(draw.draw_goal(image, camera, goal_frame, net), GOAL)

    # People and ball, far to near.
    actors: list[tuple[float, Callable[[], None]]] = []
    for p in range(22):
        team = 0 if p < 11 else 1
        kit = script.kits[2 + team] if p in (0, 11) else script.kits[team]
        x, y = script.players[i, p]
        depth = float(camera.project(np.array([x, y, 0.0]))[1])

        def person(x: float = x, y: float = y, p: int = p, kit: draw.Kit = kit) -> None:
            box, _, _ = draw.draw_person(image, camera, x, y, float(script.lift[i, p]), int(script.pose[i, p]), kit)
            keep(box, PLAYER)

        actors.append((depth, person))
    rx, ry = script.referee[i]

    def referee() -> None:
        box, card_box, _ = draw.draw_person(image, camera, rx, ry, 0.0, int(script.referee_pose[i]),
                                            script.kits[4], card=int(script.card[i]))
        keep(box, REFEREE)
        if card_box is not None:
            keep(card_box, YELLOW if script.card[i] == 1 else RED)

    actors.append((float(camera.project(np.array([rx, ry, 0.0]))[1]), referee))
    ball = script.ball[i]
    (bu, bv), ball_depth = camera.project(ball + [0, 0, draw.BALL_RADIUS])
    ball_depth = float(ball_depth)

    def ball_draw() -> None:
        if ball_depth <= 1.0:
            return
        radius = draw.ball_radius_px(camera, ball_depth)
        (su, sv), _ = camera.project(np.array([ball[0], ball[1], 0.0]))
        draw.fill_disc(image, su, sv, radius * 0.9, np.zeros(3, np.float32), 0.3)
        draw.fill_disc(image, bu, bv, radius, draw.LINE_WHITE)
        pad = max(radius, 1.0) + 0.5
        keep(np.array([bu - pad, bv - pad, bu + pad, bv + pad]), BALL)

    actors.append((ball_depth - 0.5, ball_draw))
    for _, paint in sorted(actors, key=lambda a: -a[0]):
        paint()
    frame = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    box_array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    return RenderedFrame(frame, box_array, np.array(classes, dtype=np.int64), crowd)
