"""Drawing for the synthetic match: a rotating broadcast camera over a
football pitch, stands full of crowd, players, referee, ball and cards.

Everything is vectorised numpy over pixels; per-object work is a handful of
slice operations. Coordinates: the pitch is x in [0, 105] m (goals at x = 0
and x = 105), y in [0, 68] m (the near touchline is y = 0), z up. The camera
stands behind the near touchline at the halfway line, as a main broadcast
camera does, and only rotates and zooms.

The renderer returns the frame and the pixel boxes of everything a detector
could find (players, referee, ball, goals, cards), plus a map of the crowd
specks that share the card colours, where a simulated detector makes its
false positives.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

PITCH_LENGTH = 105.0
PITCH_WIDTH = 68.0
CAMERA_POSITION = np.array([52.5, -32.0, 20.0])
STAND_FAR_Y = PITCH_WIDTH + 6.0  # the far stand rises from this line
STAND_SIDE_X = (-7.0, PITCH_LENGTH + 7.0)  # stands behind the goals
STAND_HEIGHT = 16.0
BOARD_HEIGHT = 0.9  # advertising boards at the foot of every stand
CROWD_CELL = 0.45  # metres per crowd "person"
GOAL_HALF_WIDTH = 7.32 / 2
GOAL_HEIGHT = 2.44
GOAL_DEPTH = 1.8
PLAYER_HEIGHT = 1.85
BALL_RADIUS = 0.11
CARD_MAX_AREA = 0.009  # a card never covers more than 0.9% of the frame

YELLOW_CARD = np.array([250, 214, 20], dtype=np.float32)
RED_CARD = np.array([222, 16, 28], dtype=np.float32)
CARD_COLOURS = {1: YELLOW_CARD, 2: RED_CARD}

# Crowd palette: muted clothes, some white, and the card colours. Index
# CROWD_YELLOW and CROWD_RED are the confusers a detector may fire on.
CROWD_PALETTE = np.array([
    [38, 40, 48], [70, 62, 60], [96, 92, 100], [52, 66, 92], [120, 104, 90],
    [150, 140, 130], [30, 30, 34], [88, 50, 52], [60, 80, 64], [190, 186, 180],
    [236, 232, 226], [246, 210, 28], [214, 24, 32], [110, 120, 150],
], dtype=np.float32)
CROWD_YELLOW = 11
CROWD_RED = 12
# Cumulative weights (out of 1000) of the palette entries above.
_CROWD_WEIGHTS = np.array([110, 100, 90, 90, 80, 70, 110, 70, 60, 50, 50, 45, 45, 30])
CROWD_CUMULATIVE = np.cumsum(_CROWD_WEIGHTS)

GRASS_LIGHT = np.array([62, 140, 58], dtype=np.float32)
GRASS_DARK = np.array([52, 124, 50], dtype=np.float32)
SURROUND = np.array([60, 112, 60], dtype=np.float32)
LINE_WHITE = np.array([236, 240, 236], dtype=np.float32)
ROOF = np.array([24, 26, 34], dtype=np.float32)
BOARD_COLOURS = np.array([[20, 60, 170], [235, 235, 235], [20, 150, 210], [40, 40, 40]], dtype=np.float32)
SKIN = np.array([214, 170, 140], dtype=np.float32)
NET = np.array([220, 224, 226], dtype=np.float32)


@dataclass
class Camera:
    """A pinhole camera at CAMERA_POSITION looking at ``target`` with a
    horizontal view ``view_width`` metres wide at the target's distance."""

    target: np.ndarray  # (3,) world point at the image centre
    view_width: float
    width: int
    height: int

    def __post_init__(self) -> None:
        forward = self.target - CAMERA_POSITION
        distance = float(np.linalg.norm(forward))
        self.forward = forward / distance
        right = np.cross(self.forward, np.array([0.0, 0.0, 1.0]))
        self.right = right / np.linalg.norm(right)
        self.down = np.cross(self.forward, self.right)
        self.focal = self.width * distance / self.view_width  # pixels

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (..., 2) and depth (...) of world points (..., 3)."""
        d = points - CAMERA_POSITION
        depth = d @ self.forward
        safe = np.maximum(depth, 1e-3)
        u = self.width / 2 + self.focal * (d @ self.right) / safe
        v = self.height / 2 + self.focal * (d @ self.down) / safe
        return np.stack([u, v], axis=-1), depth

    def rays(self) -> np.ndarray:
        """World ray directions (H, W, 3) through every pixel centre."""
        u = (np.arange(self.width) + 0.5 - self.width / 2) / self.focal
        v = (np.arange(self.height) + 0.5 - self.height / 2) / self.focal
        rays = (self.forward[None, None, :] + u[None, :, None] * self.right[None, None, :]
                + v[:, None, None] * self.down[None, None, :])
        return rays.astype(np.float32)


def _crowd_index(a: np.ndarray, b: np.ndarray, salt: int, frame: int) -> np.ndarray:
    """Palette index of the crowd member at stand coordinates (a, b) metres.

    A fixed hash of the cell gives each seat a person; about one seat in
    eight changes every half second as people move."""
    ia = np.floor(a / CROWD_CELL).astype(np.int64)
    ib = np.floor(b / CROWD_CELL).astype(np.int64)
    mask = np.int64(0x7FFFFFFF)
    h = (ia * 73856093) ^ (ib * 19349663) ^ np.int64(salt * 83492791 & 0x7FFFFFFF)
    h = (h * 2654435761) & mask
    moving = (h % 8) == 0
    h2 = ((h ^ np.int64((frame // 4) * 40503 + 1)) * 2246822519) & mask
    h = np.where(moving, h2, h)
    return np.searchsorted(CROWD_CUMULATIVE, (h >> 7) % 1000, side="right").clip(0, len(CROWD_PALETTE) - 1)


def _segment_distance(px: np.ndarray, py: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Smallest distance from points (P,) to axis-aligned or general segments (S, 4)."""
    best = np.full(px.shape, np.inf)
    for x0, y0, x1, y1 in segments:
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / length2, 0.0, 1.0)
        best = np.minimum(best, np.hypot(px - (x0 + t * dx), py - (y0 + t * dy)))
    return best


def _pitch_segments() -> np.ndarray:
    L, W = PITCH_LENGTH, PITCH_WIDTH
    box_y0, box_y1 = W / 2 - 20.16, W / 2 + 20.16
    six_y0, six_y1 = W / 2 - 9.16, W / 2 + 9.16
    segments = [
        (0, 0, L, 0), (0, W, L, W), (0, 0, 0, W), (L, 0, L, W), (L / 2, 0, L / 2, W),
        (0, box_y0, 16.5, box_y0), (0, box_y1, 16.5, box_y1), (16.5, box_y0, 16.5, box_y1),
        (L, box_y0, L - 16.5, box_y0), (L, box_y1, L - 16.5, box_y1), (L - 16.5, box_y0, L - 16.5, box_y1),
        (0, six_y0, 5.5, six_y0), (0, six_y1, 5.5, six_y1), (5.5, six_y0, 5.5, six_y1),
        (L, six_y0, L - 5.5, six_y0), (L, six_y1, L - 5.5, six_y1), (L - 5.5, six_y0, L - 5.5, six_y1),
    ]
    # Every marking runs from the lower to the higher coordinate.
    return np.array([(min(a, c), min(b, d), max(a, c), max(b, d)) for a, b, c, d in segments], dtype=np.float64)


PITCH_SEGMENTS = _pitch_segments()


def _line_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance in metres from ground points to the nearest pitch marking:
    the axis-aligned lines, the centre circle and the three spots."""
    best = np.hypot(x - PITCH_LENGTH / 2, y - PITCH_WIDTH / 2)
    best = np.minimum(np.abs(best - 9.15), best - 0.2)
    for spot_x in (11.0, PITCH_LENGTH - 11.0):
        best = np.minimum(best, np.hypot(x - spot_x, y - PITCH_WIDTH / 2) - 0.2)
    near = (x > -2) & (x < PITCH_LENGTH + 2) & (y > -2) & (y < PITCH_WIDTH + 2)
    xs, ys = x[near], y[near]
    inner = best[near]
    for x0, y0, x1, y1 in PITCH_SEGMENTS:
        if y0 == y1:  # along x
            gap = np.maximum(np.maximum(x0 - xs, xs - x1), 0.0)
            inner = np.minimum(inner, np.maximum(np.abs(ys - y0), gap))
        else:  # along y
            gap = np.maximum(np.maximum(np.minimum(y0, y1) - ys, ys - np.maximum(y0, y1)), 0.0)
            inner = np.minimum(inner, np.maximum(np.abs(xs - x0), gap))
    best[near] = inner
    return best


FIELD_STEP = 0.08  # metres per cell of the precomputed line distance field
FIELD_ORIGIN = (-3.0, -3.0)
FIELD_SHAPE = (int((PITCH_WIDTH + 6) / FIELD_STEP) + 1, int((PITCH_LENGTH + 6) / FIELD_STEP) + 1)


@functools.lru_cache(maxsize=1)
def _line_distance_field() -> np.ndarray:
    """Distance to the nearest marking on a FIELD_STEP grid (rows y, columns x), float32."""
    ys = FIELD_ORIGIN[1] + np.arange(FIELD_SHAPE[0]) * FIELD_STEP
    xs = FIELD_ORIGIN[0] + np.arange(FIELD_SHAPE[1]) * FIELD_STEP
    gx, gy = np.meshgrid(xs, ys)
    return _line_distance(gx.ravel(), gy.ravel()).reshape(FIELD_SHAPE).astype(np.float32)


def _sample_line_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Nearest-cell lookup in the distance field; far from the pitch, far from any line."""
    field = _line_distance_field()
    col = np.rint((x - FIELD_ORIGIN[0]) / FIELD_STEP).astype(np.int64)
    row = np.rint((y - FIELD_ORIGIN[1]) / FIELD_STEP).astype(np.int64)
    inside = (col >= 0) & (col < FIELD_SHAPE[1]) & (row >= 0) & (row < FIELD_SHAPE[0])
    out = np.full(x.shape, 10.0, dtype=np.float32)
    out[inside] = field[row[inside], col[inside]]
    return out


def render_background(camera: Camera, salt: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """The static scene seen by ``camera``: grass with mowing stripes and
    lines, advertising boards, crowd and roof.

    Returns the image (H, W, 3) float32 and the crowd palette index per pixel
    (H, W) int, -1 where there is no crowd."""
    H, W = camera.height, camera.width
    rays = camera.rays()  # (H, W, 3)
    c = CAMERA_POSITION
    dx, dy, dz = rays[..., 0], rays[..., 1], rays[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dz < 0, -c[2] / dz, np.inf)
        t_far = np.where(dy > 0, (STAND_FAR_Y - c[1]) / dy, np.inf)
        t_left = np.where(dx < 0, (STAND_SIDE_X[0] - c[0]) / dx, np.inf)
        t_right = np.where(dx > 0, (STAND_SIDE_X[1] - c[0]) / dx, np.inf)
    t_wall = np.minimum(t_far, np.minimum(t_left, t_right))
    ground = t_ground < t_wall

    image = np.empty((H, W, 3), dtype=np.float32)
    crowd = np.full((H, W), -1, dtype=np.int64)

    # Ground: grass, stripes every 5.25 m, lines about one pixel wide.
    gx = c[0] + t_ground * dx
    gy = c[1] + t_ground * dy
    gxs, gys = gx[ground], gy[ground]
    stripe = (np.floor(gxs / 5.25).astype(np.int64) % 2 == 0)
    colour = np.where(stripe[:, None], GRASS_LIGHT, GRASS_DARK)
    outside = (gxs < -1.5) | (gxs > PITCH_LENGTH + 1.5) | (gys < -1.5) | (gys > PITCH_WIDTH + 1.5)
    colour[outside] = SURROUND
    norm = np.linalg.norm(rays[ground], axis=-1)
    footprint = t_ground[ground] * norm / camera.focal  # metres per pixel, across the ray
    distance = _sample_line_distance(gxs, gys)
    half_width = np.maximum(0.07, 0.45 * footprint)
    alpha = np.clip(1.0 - (distance - half_width) / np.maximum(footprint, 1e-6), 0.0, 1.0) * 0.9
    colour = colour * (1 - alpha[:, None]) + LINE_WHITE * alpha[:, None]
    image[ground] = colour

    # Stands: boards at the foot, then crowd, then roof.
    wall = ~ground
    tw = t_wall[wall]
    wx = c[0] + tw * dx[wall]
    wy = c[1] + tw * dy[wall]
    wz = c[2] + tw * dz[wall]
    on_far = t_far[wall] <= np.minimum(t_left[wall], t_right[wall])
    along = np.where(on_far, wx, wy + (wx > PITCH_LENGTH / 2) * 500.0 + 1000.0)
    wall_colour = np.empty((tw.shape[0], 3), dtype=np.float32)
    board = wz < BOARD_HEIGHT
    board_index = (np.floor(along / 9.0).astype(np.int64) + salt) % len(BOARD_COLOURS)
    wall_colour[board] = BOARD_COLOURS[board_index[board]]
    seated = (~board) & (wz < STAND_HEIGHT)
    index = _crowd_index(along[seated], wz[seated] - BOARD_HEIGHT, salt, frame)
    wall_colour[seated] = CROWD_PALETTE[index]
    wall_colour[wz >= STAND_HEIGHT] = ROOF
    crowd_values = np.full(tw.shape[0], -1, dtype=np.int64)
    crowd_values[seated] = index
    image[wall] = wall_colour
    crowd[wall] = crowd_values
    return image, crowd


def _coverage(lo: float, hi: float, n: int) -> tuple[int, np.ndarray]:
    """First pixel index and per-pixel coverage of the interval [lo, hi)."""
    start = max(math.floor(lo), 0)
    stop = min(math.ceil(hi), n)
    if stop <= start:
        return start, np.zeros(0, dtype=np.float32)
    cover = np.ones(stop - start, dtype=np.float32)
    cover[0] = min(hi, start + 1) - max(lo, start)
    if stop - start > 1:
        cover[-1] = min(hi, stop) - max(lo, stop - 1)
    return start, cover


def fill_rect(image: np.ndarray, x0: float, y0: float, x1: float, y1: float,
              colour: np.ndarray, alpha: float = 1.0) -> None:
    """Anti-aliased axis-aligned rectangle in pixel coordinates."""
    H, W = image.shape[:2]
    sx, cx = _coverage(x0, x1, W)
    sy, cy = _coverage(y0, y1, H)
    if cx.size == 0 or cy.size == 0:
        return
    a = np.outer(cy * alpha, cx)[..., None]
    region = image[sy:sy + cy.size, sx:sx + cx.size]
    region *= 1 - a
    region += a * colour


def fill_disc(image: np.ndarray, u: float, v: float, radius: float, colour: np.ndarray,
              alpha: float = 1.0) -> None:
    H, W = image.shape[:2]
    x0, x1 = max(int(u - radius - 1), 0), min(int(u + radius + 2), W)
    y0, y1 = max(int(v - radius - 1), 0), min(int(v + radius + 2), H)
    if x1 <= x0 or y1 <= y0:
        return
    xs = np.arange(x0, x1) + 0.5
    ys = np.arange(y0, y1) + 0.5
    d = np.hypot(xs[None, :] - u, ys[:, None] - v)
    a = (np.clip(radius + 0.5 - d, 0.0, 1.0) * alpha)[..., None].astype(np.float32)
    region = image[y0:y1, x0:x1]
    region *= 1 - a
    region += a * colour


def draw_line(image: np.ndarray, p0: np.ndarray, p1: np.ndarray, width: float, colour: np.ndarray,
              alpha: float = 1.0) -> None:
    """Anti-aliased segment of ``width`` pixels between pixel points."""
    H, W = image.shape[:2]
    pad = width + 1
    x0 = max(int(min(p0[0], p1[0]) - pad), 0)
    x1 = min(int(max(p0[0], p1[0]) + pad) + 1, W)
    y0 = max(int(min(p0[1], p1[1]) - pad), 0)
    y1 = min(int(max(p0[1], p1[1]) + pad) + 1, H)
    if x1 <= x0 or y1 <= y0:
        return
    xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    d = _segment_distance(xs.ravel(), ys.ravel(), np.array([[p0[0], p0[1], p1[0], p1[1]]])).reshape(xs.shape)
    a = (np.clip(width / 2 + 0.5 - d, 0.0, 1.0) * alpha)[..., None].astype(np.float32)
    region = image[y0:y1, x0:x1]
    region *= 1 - a
    region += a * colour


def fill_polygon(image: np.ndarray, points: np.ndarray, colour: np.ndarray, alpha: float) -> None:
    """Convex polygon (P, 2) in pixel coordinates, flat alpha, no anti-aliasing."""
    H, W = image.shape[:2]
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 1, [W, H])
    if x1 <= x0 or y1 <= y0:
        return
    xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    nxt = np.roll(points, -1, axis=0)
    cross = ((nxt[:, 0, None, None] - points[:, 0, None, None]) * (ys[None] - points[:, 1, None, None])
             - (nxt[:, 1, None, None] - points[:, 1, None, None]) * (xs[None] - points[:, 0, None, None]))
    inside = np.all(cross >= 0, axis=0) | np.all(cross <= 0, axis=0)
    region = image[y0:y1, x0:x1]
    region[inside] = region[inside] * (1 - alpha) + colour * alpha


@dataclass
class Kit:
    shirt: np.ndarray
    shorts: np.ndarray
    socks: np.ndarray


def goal_boxes(camera: Camera) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each goal: the 3D corners of its frame (posts and bar) and of its net."""
    out = []
    for line_x, back in ((0.0, -GOAL_DEPTH), (PITCH_LENGTH, GOAL_DEPTH)):
        y0, y1 = PITCH_WIDTH / 2 - GOAL_HALF_WIDTH, PITCH_WIDTH / 2 + GOAL_HALF_WIDTH
        frame = np.array([[line_x, y0, 0], [line_x, y0, GOAL_HEIGHT], [line_x, y1, GOAL_HEIGHT], [line_x, y1, 0]])
        net = np.array([[line_x + back, y0, 0], [line_x + back, y0, GOAL_HEIGHT * 0.8],
                        [line_x + back, y1, GOAL_HEIGHT * 0.8], [line_x + back, y1, 0]])
        out.append((frame, net))
    return out


def draw_goal(image: np.ndarray, camera: Camera, frame: np.ndarray, net: np.ndarray) -> np.ndarray | None:
    """Draw one goal; returns its pixel box [x0, y0, x1, y1] or None when behind the camera."""
    pts, depth = camera.project(frame)
    net_pts, net_depth = camera.project(net)
    if np.any(depth <= 1.0) or np.any(net_depth <= 1.0):
        return None
    post_width = max(0.12 * camera.focal / float(depth.mean()), 0.8)
    fill_polygon(image, net_pts, NET, 0.35)
    fill_polygon(image, np.array([pts[1], pts[2], net_pts[2], net_pts[1]]), NET, 0.25)
    for a, b in ((net_pts[0], net_pts[1]), (net_pts[3], net_pts[2]), (net_pts[1], net_pts[2]),
                 (pts[1], net_pts[1]), (pts[2], net_pts[2])):
        draw_line(image, a, b, post_width * 0.4, NET, 0.6)
    for a, b in ((pts[0], pts[1]), (pts[1], pts[2]), (pts[2], pts[3])):
        draw_line(image, a, b, post_width, LINE_WHITE)
    everything = np.concatenate([pts, net_pts])
    return np.array([everything[:, 0].min(), everything[:, 1].min(), everything[:, 0].max(), everything[:, 1].max()])


# Poses of a person sprite.
STAND, LYING, ARMS_UP, JUMP, POINTING, CARD_UP = 0, 1, 2, 3, 4, 5


def draw_person(image: np.ndarray, camera: Camera, x: float, y: float, lift: float, pose: int,
                kit: Kit, card: int = 0) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Draw a person standing at (x, y) lifted ``lift`` metres (jumps).

    Returns the person's pixel box, the pixel box of the card they hold (or
    None), and the depth (for the caller's draw order and ball size)."""
    base, depth = camera.project(np.array([[x, y, lift], [x, y, lift + PLAYER_HEIGHT]]))
    depth = float(depth[0])
    (u, v_foot), (_, v_head) = base
    h = max(v_foot - v_head, 1.0)
    w = 0.36 * h
    H, W = image.shape[:2]
    shadow_w = w * 1.2
    fill_rect(image, u - shadow_w / 2, v_foot - 0.04 * h, u + shadow_w / 2, v_foot + 0.04 * h,
              np.zeros(3, np.float32), 0.35)
    if pose == LYING:
        # Lying on the grass: a horizontal body.
        length, thick = 0.95 * h, 0.2 * h
        x0, y0 = u - length / 2, v_foot - thick
        fill_rect(image, x0, y0, x0 + 0.15 * length, v_foot, SKIN)
        fill_rect(image, x0 + 0.15 * length, y0, x0 + 0.55 * length, v_foot, kit.shirt)
        fill_rect(image, x0 + 0.55 * length, y0, x0 + 0.72 * length, v_foot, kit.shorts)
        fill_rect(image, x0 + 0.72 * length, y0 + 0.3 * thick, x0 + length, v_foot, kit.socks)
        return np.array([x0, y0, x0 + length, v_foot]), None, depth
    top = v_head
    fill_rect(image, u - 0.2 * w, top, u + 0.2 * w, top + 0.14 * h, SKIN)  # head
    fill_rect(image, u - w / 2, top + 0.14 * h, u + w / 2, top + 0.5 * h, kit.shirt)
    fill_rect(image, u - w / 2, top + 0.5 * h, u + w / 2, top + 0.66 * h, kit.shorts)
    fill_rect(image, u - 0.42 * w, top + 0.66 * h, u - 0.08 * w, v_foot, kit.socks)
    fill_rect(image, u + 0.08 * w, top + 0.66 * h, u + 0.42 * w, v_foot, kit.socks)
    box_top = top
    card_box = None
    arm = 0.12 * w + 0.3
    if pose in (ARMS_UP, JUMP):
        # Both arms overhead (throw-in, celebration).
        fill_rect(image, u - 0.45 * w, top - 0.28 * h, u - 0.45 * w + arm, top + 0.2 * h, kit.shirt)
        fill_rect(image, u + 0.45 * w - arm, top - 0.28 * h, u + 0.45 * w, top + 0.2 * h, kit.shirt)
        box_top = top - 0.28 * h
    elif pose in (POINTING, CARD_UP):
        # One arm straight up; with a card in the hand for CARD_UP.
        ax = u + 0.5 * w
        fill_rect(image, ax, top - 0.3 * h, ax + arm, top + 0.2 * h, kit.shirt)
        box_top = top - 0.3 * h
        if pose == CARD_UP and card in CARD_COLOURS:
            card_h = float(np.clip(0.3 * h, 2.0, np.sqrt(CARD_MAX_AREA * H * W / 0.72)))
            card_w = 0.72 * card_h
            cx0, cy1 = ax - 0.1 * card_w, top - 0.22 * h
            card_box = np.array([cx0, cy1 - card_h, cx0 + card_w, cy1])
            fill_rect(image, *card_box, CARD_COLOURS[card])
            box_top = min(box_top, cy1 - card_h)
    return np.array([u - w / 2 - arm, box_top, u + w / 2 + arm, v_foot]), card_box, depth


def ball_radius_px(camera: Camera, depth: float) -> float:
    return max(BALL_RADIUS * camera.focal / max(depth, 1.0), 0.7)
