"""The match simulator: a seeded match played frame by frame (passes,
throw-ins, shots, goals with a celebration, kick-offs, corners, fouls with
and without a card) and the broadcast camera that follows it.

Every label marks the first frame where its event is visible: the card up,
the ball leaving the thrower's hands, the ball leaving the kicker's foot,
the ball across the goal line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from uglspot.data.labels import Event
from uglspot.synth import draw
from uglspot.synth.config import SynthConfig


@dataclass
class MatchScript:
    """What happens in every frame of a simulated match (T frames).

    Players 0–10 are team 0 (keeper 0, attacking toward x = 105), 11–21 team 1
    (keeper 11). Positions are pitch metres."""

    ball: np.ndarray  # (T, 3) x, y, z
    players: np.ndarray  # (T, 22, 2)
    lift: np.ndarray  # (T, 22) metres off the ground (celebration jumps)
    pose: np.ndarray  # (T, 22) int, synthetic_render pose codes
    referee: np.ndarray  # (T, 2)
    referee_pose: np.ndarray  # (T,) int
    card: np.ndarray  # (T,) int: 0 none, 1 yellow, 2 red (held by the referee)
    camera_target: np.ndarray  # (T, 3)
    camera_view: np.ndarray  # (T,) metres across the image at the target
    events: list[Event]
    kits: list[draw.Kit]  # team 0, team 1, keeper 0, keeper 1, referee
    salt: int  # crowd and boards pattern

    @property
    def num_frames(self) -> int:
        return int(self.ball.shape[0])


class _MatchOver(Exception):
    pass


_KIT_COLOURS = np.array([
    [235, 235, 240], [30, 60, 170], [120, 180, 235], [170, 20, 40], [230, 190, 40],
    [20, 20, 24], [240, 120, 30], [90, 40, 120], [200, 60, 110], [20, 110, 90],
], dtype=np.float32)
_REFEREE_SHIRTS = np.array([[18, 18, 20], [18, 18, 20], [40, 40, 48], [160, 220, 40], [60, 20, 90]], dtype=np.float32)
_FORMATION = np.array([
    [4, 34], [18, 10], [16, 26], [16, 42], [18, 58], [33, 12], [31, 27], [31, 41], [33, 56], [45, 26], [45, 42],
], dtype=np.float64)


class _MatchSimulator:
    """Plays a match frame by frame. Incidents are methods that move the
    actors and call ``tick`` once per frame; ``event`` labels the next frame."""

    def __init__(self, cfg: SynthConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.dt = 1.0 / cfg.fps
        self.total = cfg.num_frames
        T = self.total
        self.out_ball = np.zeros((T, 3))
        self.out_players = np.zeros((T, 22, 2))
        self.out_lift = np.zeros((T, 22))
        self.out_pose = np.zeros((T, 22), dtype=np.int8)
        self.out_referee = np.zeros((T, 2))
        self.out_referee_pose = np.zeros(T, dtype=np.int8)
        self.out_card = np.zeros(T, dtype=np.int8)
        self.out_cam_target = np.zeros((T, 3))
        self.out_cam_view = np.zeros(T)
        self.frame = 0
        self.events: list[Event] = []
        self.pending: list[str] = []

        self.pos = self._formation(kickoff=True)
        self.targets = self.pos.copy()
        self.speed = np.full(22, 6.0)
        self.lift = np.zeros(22)
        self.pose = np.zeros(22, dtype=np.int8)
        self.ball = np.array([52.5, 34.0, 0.0])
        self.ref = np.array([45.0, 24.0])
        self.ref_target = self.ref.copy()
        self.ref_pose = draw.STAND
        self.card = 0
        self.cam_target = np.array([52.5, 34.0, 0.0])
        self.cam_view = 45.0
        self.cam_view_goal = 45.0
        self.cam_focus: Callable[[], np.ndarray] = lambda: self.ball.copy()
        self.closeup = False
        self.holder: int | None = None
        self.goals = [0, 0]

    # ---- bookkeeping -------------------------------------------------
    def event(self, label: str) -> None:
        """Label the next recorded frame."""
        self.pending.append(label)

    def tick(self) -> None:
        if self.frame >= self.total:
            raise _MatchOver
        self._move_people()
        self._move_camera()
        i = self.frame
        self.out_ball[i] = self.ball
        self.out_players[i] = self.pos
        self.out_lift[i] = self.lift
        self.out_pose[i] = self.pose
        self.out_referee[i] = self.ref
        self.out_referee_pose[i] = self.ref_pose
        self.out_card[i] = self.card
        self.out_cam_target[i] = self.cam_target
        self.out_cam_view[i] = self.cam_view
        for label in self.pending:
            self.events.append(Event(frame=i, label=label))
        self.pending = []
        self.frame += 1

    def wait(self, seconds: float, each: Callable[[], None] | None = None) -> None:
        for _ in range(max(1, int(round(seconds / self.dt)))):
            if each is not None:
                each()
            self.tick()

    def seconds(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    # ---- movement ----------------------------------------------------
    def _move_people(self) -> None:
        step = self.targets - self.pos
        distance = np.linalg.norm(step, axis=1, keepdims=True)
        reach = (self.speed * self.dt)[:, None]
        self.pos = self.pos + step * np.minimum(1.0, reach / np.maximum(distance, 1e-6))
        self.pos += self.rng.normal(0.0, 0.03, self.pos.shape)
        step = self.ref_target - self.ref
        distance = float(np.linalg.norm(step))
        self.ref = self.ref + step * min(1.0, 7.0 * self.dt / max(distance, 1e-6))

    def _move_camera(self) -> None:
        if self.closeup:
            return
        focus = self.cam_focus()
        focus[0] = np.clip(focus[0], 4.0, 101.0)
        focus[1] = np.clip(focus[1], 3.0, 65.0)
        focus[2] = 0.0
        smooth = 1.0 - math.exp(-self.dt / 0.7)
        self.cam_target = self.cam_target + (focus - self.cam_target) * smooth
        self.cam_view += (self.cam_view_goal - self.cam_view) * (1.0 - math.exp(-self.dt / 2.0))
        if self.rng.random() < self.dt / 6.0:
            self.cam_view_goal = self.seconds(26.0, 58.0)
        if self.rng.random() < self.dt / 30.0:
            self.cut(view=self.seconds(24.0, 55.0))

    def cut(self, view: float, target: np.ndarray | None = None, closeup: bool = False) -> None:
        """An instant camera change; ``closeup`` holds the shot still."""
        self.closeup = closeup
        self.cam_view = self.cam_view_goal = view
        if target is not None:
            self.cam_target = np.asarray(target, dtype=np.float64).copy()
        else:
            self.cam_target = self.ball.copy()
            self.cam_target[2] = 0.0

    def _formation(self, kickoff: bool = False) -> np.ndarray:
        base = _FORMATION.copy()
        if kickoff:
            base[:, 0] = np.minimum(base[:, 0], 50.0)
        else:
            shift = np.clip((self.ball[0] - 52.5) * 0.6, -25.0, 25.0)
            base[1:, 0] = np.clip(base[1:, 0] + shift + 8.0, 8.0, 97.0)
            base[1:, 1] = base[1:, 1] + (self.ball[1] - base[1:, 1]) * 0.25
            base[0, 1] = 34.0 + (self.ball[1] - 34.0) * 0.2
        other = base.copy()
        other[:, 0] = 105.0 - other[:, 0]
        if not kickoff:
            other[1:, 0] = np.clip(105.0 - _FORMATION[1:, 0] + np.clip((self.ball[0] - 52.5) * 0.6, -25, 25) - 8.0,
                                   8.0, 97.0)
        return np.concatenate([base, other])

    def _team(self, player: int) -> int:
        return 0 if player < 11 else 1

    def _attack_x(self, team: int) -> float:
        return 105.0 if team == 0 else 0.0

    def _ref_follow(self) -> None:
        offset = np.array([-9.0 if self.ball[0] > 52.5 else 9.0, -7.0 if self.ball[1] > 34 else 7.0])
        self.ref_target = np.clip(self.ball[:2] + offset, [2.0, 2.0], [103.0, 66.0])

    def _fly(self, to: np.ndarray, speed: float, peak: float, z_from: float = 0.0,
             label_at_start: str | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Move the ball along a straight line with a parabolic height."""
        start = self.ball.copy()
        start[2] = z_from
        distance = float(np.linalg.norm(to[:2] - start[:2]))
        frames = max(1, int(math.ceil(distance / (speed * self.dt))))
        if label_at_start:
            self.event(label_at_start)
        for k in range(1, frames + 1):
            s = k / frames
            self.ball[:2] = start[:2] + (to[:2] - start[:2]) * s
            self.ball[2] = start[2] * (1 - s) + to[2] * s + 4 * peak * s * (1 - s)
            self._ref_follow()
            self.tick()
            if stop is not None and stop():
                return

    # ---- incidents ---------------------------------------------------
    def run(self) -> None:
        try:
            self.kick_off(team=int(self.rng.integers(2)), first=True)
            while True:
                self.open_play(self.seconds(*self.cfg.open_play_seconds))
                names = list(self.cfg.incidents)
                weights = np.array([self.cfg.incidents[n] for n in names], dtype=np.float64)
                incident = names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
                {"throw-in": self.throw_in, "shot": self.shot, "foul": self.foul, "corner": self.corner}[incident]()
        except _MatchOver:
            pass

    def open_play(self, seconds: float, team: int | None = None) -> None:
        """Passing and dribbling; the camera follows the ball."""
        self.pose[:] = draw.STAND
        self.lift[:] = 0.0
        self.cam_focus = lambda: self.ball.copy()
        if self.holder is None:
            if team is None:
                team = int(self.rng.integers(2))
            candidates = np.arange(11 * team + 1, 11 * team + 11)
            near = np.linalg.norm(self.pos[candidates] - self.ball[:2], axis=1)
            self.holder = int(candidates[np.argmin(near)])
        end = self.frame + int(seconds / self.dt)
        while self.frame < end:
            self._dribble(self.seconds(0.8, 2.2))
            self._pass()

    def _others_follow(self) -> None:
        self.targets = self._formation()
        self.speed[:] = 4.5
        holder = self.holder if self.holder is not None else 0
        opponents = np.arange(11, 22) if holder < 11 else np.arange(0, 11)
        presser = int(opponents[1 + np.argmin(np.linalg.norm(self.pos[opponents[1:]] - self.ball[:2], axis=1))])
        self.targets[presser] = self.ball[:2]
        self.speed[presser] = 6.0
        self._ref_follow()

    def _dribble(self, seconds: float) -> None:
        holder = self.holder
        assert holder is not None
        team = self._team(holder)
        direction = np.array([1.0 if team == 0 else -1.0, self.rng.normal(0, 0.5)])
        direction /= np.linalg.norm(direction)
        for _ in range(max(1, int(seconds / self.dt))):
            self._others_follow()
            self.targets[holder] = np.clip(self.pos[holder] + direction * 3.0, [3, 3], [102, 65])
            self.speed[holder] = 5.0
            self.ball[:2] = self.pos[holder] + direction * 0.7
            self.ball[2] = 0.0
            self.tick()

    def _pass(self) -> None:
        holder = self.holder
        assert holder is not None
        team = self._team(holder)
        mates = np.arange(11 * team + 1, 11 * team + 11)
        mates = mates[mates != holder]
        gain = (self.pos[mates, 0] - self.pos[holder, 0]) * (1 if team == 0 else -1)
        distance = np.linalg.norm(self.pos[mates] - self.pos[holder], axis=1)
        weight = np.exp(-np.abs(distance - 16.0) / 8.0) * np.exp(np.clip(gain, -20, 20) / 15.0)
        receiver = int(mates[self.rng.choice(len(mates), p=weight / weight.sum())])
        target = self.pos[receiver] + self.rng.normal(0, 1.0, 2)
        if self.rng.random() < 0.2:
            opponents = np.arange(11 * (1 - team) + 1, 11 * (1 - team) + 11)
            middle = (self.pos[holder] + target) / 2
            receiver = int(opponents[np.argmin(np.linalg.norm(self.pos[opponents] - middle, axis=1))])
        target = np.clip(target, [1, 1], [104, 67])
        length = float(np.linalg.norm(target - self.ball[:2]))
        self.holder = None
        self.targets[receiver] = target
        self.speed[receiver] = 6.5
        self._fly(np.array([target[0], target[1], 0.0]), speed=15.0, peak=0.1 * max(length - 15.0, 0.0))
        self.holder = receiver

    def throw_in(self) -> None:
        """The ball goes out over a touchline; a player walks to it, holds it
        overhead, and the label marks the frame it leaves his hands."""
        side = 0.0 if self.ball[1] < 34 else 68.0
        out = np.array([np.clip(self.ball[0] + self.rng.normal(0, 8), 6, 99), side + (-1.5 if side == 0 else 1.5), 0.0])
        self.holder = None
        self._fly(out, speed=13.0, peak=0.5)
        self.cam_view_goal = self.seconds(16.0, 28.0)
        team = int(self.rng.integers(2))
        squad = np.arange(11 * team + 1, 11 * team + 11)
        thrower = int(squad[np.argmin(np.linalg.norm(self.pos[squad] - out[:2], axis=1))])
        spot = np.array([out[0], side + (-0.4 if side == 0 else 0.4)])
        self.targets = self._formation()
        self.speed[:] = 2.5
        self.targets[thrower] = spot
        self.speed[thrower] = 5.0
        self.ref_target = np.clip(out[:2] + [0, 18 if side == 0 else -18], 2, 103)
        walk = 0
        while np.linalg.norm(self.pos[thrower] - spot) > 0.5 and walk < int(5.0 / self.dt):
            self.tick()
            walk += 1
        self.pos[thrower] = spot
        self.targets[thrower] = spot
        self.pose[thrower] = draw.ARMS_UP
        self.ball = np.array([spot[0], spot[1], draw.PLAYER_HEIGHT + 0.35])
        self.wait(self.seconds(1.0, 2.0))
        self.pose[thrower] = draw.STAND
        mates = squad[squad != thrower]
        receiver = int(mates[np.argmin(np.linalg.norm(self.pos[mates] - spot, axis=1))])
        target = np.clip(self.pos[receiver] + self.rng.normal(0, 1.5, 2), [2, 2], [103, 66])
        target[1] = np.clip(target[1], 4.0, 64.0)
        self.targets[receiver] = target
        self._fly(np.array([target[0], target[1], 0.0]), speed=10.0, peak=0.8,
                  z_from=draw.PLAYER_HEIGHT + 0.35, label_at_start="Throw-in")
        self.holder = receiver

    def shot(self) -> None:
        """An attacker dribbles into range and shoots; the label marks the
        frame the ball leaves his foot. It is a goal, a save or wide."""
        team = int(self.rng.integers(2))
        goal_x = self._attack_x(team)
        squad = np.arange(11 * team + 1, 11 * team + 11)
        shooter = int(squad[np.argmin(np.abs(self.pos[squad, 0] - goal_x))])
        self.holder = shooter
        spot = np.array([goal_x - (1 if team == 0 else -1) * self.seconds(14, 26), self.seconds(18, 50)])
        self.cam_focus = lambda: self.ball.copy()
        for _ in range(int(self.seconds(1.5, 3.0) / self.dt)):
            self._others_follow()
            self.targets[shooter] = spot
            self.speed[shooter] = 7.5
            step = spot - self.pos[shooter]
            self.ball[:2] = self.pos[shooter] + step / max(np.linalg.norm(step), 1e-6) * 0.7
            self.ball[2] = 0.0
            self.tick()
        keeper = 11 if team == 0 else 0
        roll = self.rng.random()
        outcome = "goal" if roll < self.cfg.goal_probability else ("save" if roll < 0.5 + self.cfg.goal_probability / 2
                                                                      else "wide")
        if outcome == "wide":
            aim_y = 34.0 + self.rng.choice([-1, 1]) * self.seconds(draw.GOAL_HALF_WIDTH + 1.0, 9.0)
        else:
            aim_y = 34.0 + self.seconds(-draw.GOAL_HALF_WIDTH + 0.4, draw.GOAL_HALF_WIDTH - 0.4)
        beyond = goal_x + (1 if team == 0 else -1) * (draw.GOAL_DEPTH - 0.3)
        self.holder = None
        if outcome == "save":
            catch = np.array([goal_x - (1 if team == 0 else -1) * 1.5, aim_y, 1.0])
            self.targets[keeper] = catch[:2]
            self.speed[keeper] = 8.0
            self._fly(catch, speed=self.seconds(20, 28), peak=0.8, label_at_start="Shot")
            self.holder = keeper
            self.pose[keeper] = draw.ARMS_UP
            self.ball = np.array([self.pos[keeper, 0], self.pos[keeper, 1], draw.PLAYER_HEIGHT + 0.3])
            self.wait(self.seconds(1.0, 2.0))
            self.pose[keeper] = draw.STAND
            return
        end = np.array([beyond, aim_y, self.seconds(0.2, 1.8)])
        total = float(np.linalg.norm(end[:2] - self.ball[:2]))
        speed = self.seconds(20, 28)
        frames = max(1, int(math.ceil(total / (speed * self.dt))))
        start = self.ball.copy()
        crossed = False
        self.event("Shot")
        for k in range(1, frames + 1):
            s = k / frames
            self.ball[:2] = start[:2] + (end[:2] - start[:2]) * s
            self.ball[2] = end[2] * s + 4 * 0.6 * s * (1 - s)
            over = self.ball[0] > goal_x if team == 0 else self.ball[0] < goal_x
            if outcome == "goal" and over and not crossed:
                crossed = True
                self.event("Goal")  # the first frame with the ball across the line
            self._ref_follow()
            self.tick()
        if outcome == "goal":
            self.goals[team] += 1
            self.celebrate(team)
            self.kick_off(team=1 - team)
        elif self.rng.random() < 0.5:
            self.corner(team=team)
        else:
            self.goal_kick(team=1 - team)

    def celebrate(self, team: int) -> None:
        """Scorers run to a corner and jump; the camera cuts close."""
        corner = np.array([self._attack_x(team) + (-4 if team == 0 else 4), self.rng.choice([4.0, 64.0])])
        squad = np.arange(11 * team + 1, 11 * team + 11)
        self.targets = self.pos.copy()
        self.speed[:] = 2.0
        self.targets[squad] = corner + self.rng.normal(0, 1.6, (10, 2))
        self.speed[squad] = 7.0
        self.wait(1.0)
        group = lambda: np.array([*self.pos[squad].mean(axis=0), 0.0])
        self.cut(view=self.seconds(14, 20), target=group(), closeup=True)
        phase = self.rng.uniform(0, 2 * math.pi, 10)
        start = self.frame

        def bounce() -> None:
            t = (self.frame - start) * self.dt
            self.pose[squad] = draw.JUMP
            self.lift[squad] = 0.35 * np.abs(np.sin(4.0 * t + phase))
            self.cam_target = self.cam_target + (group() - self.cam_target) * 0.2

        self.wait(self.seconds(5.0, 8.0), bounce)
        self.pose[:] = draw.STAND
        self.lift[:] = 0.0
        self.closeup = False

    def kick_off(self, team: int, first: bool = False) -> None:
        """Players in their halves, the ball on the centre spot; the label
        marks the frame the ball is first played."""
        self.holder = None
        self.pos = self._formation(kickoff=True) + self.rng.normal(0, 0.5, (22, 2))
        kicker = 11 * team + 9
        mate = 11 * team + 10
        self.pos[kicker] = [52.5 + (-0.6 if team == 0 else 0.6), 34.0]
        self.pos[mate] = [52.5 + (-0.6 if team == 0 else 0.6), 37.0]
        self.targets = self.pos.copy()
        self.ball = np.array([52.5, 34.0, 0.0])
        self.ref = np.array([48.0, 24.0])
        self.ref_target = self.ref.copy()
        self.cut(view=self.seconds(40, 60), target=np.array([52.5, 34.0, 0.0]))
        self.cam_focus = lambda: np.array([52.5, 34.0, 0.0])
        self.wait(self.seconds(1.5, 3.5))
        back = np.array([52.5 + (-9.0 if team == 0 else 9.0), 34.0 + self.rng.normal(0, 5)])
        self.targets[11 * team + 6] = back
        self._fly(np.array([back[0], back[1], 0.0]), speed=11.0, peak=0.0, label_at_start="Kick-off")
        self.holder = 11 * team + 6

    def corner(self, team: int | None = None) -> None:
        """The ball at a corner flag, players in the box; the label marks the kick."""
        if team is None:
            team = int(self.rng.integers(2))
        goal_x = self._attack_x(team)
        side = float(self.rng.choice([0.4, 67.6]))
        flag = np.array([goal_x + (-0.4 if team == 0 else 0.4), side])
        self.holder = None
        self.cut(view=self.seconds(30, 45), target=np.array([goal_x - (1 if team == 0 else -1) * 12, 34.0, 0.0]))
        squad = np.arange(11 * team + 1, 11 * team + 11)
        opponents = np.arange(11 * (1 - team) + 1, 11 * (1 - team) + 11)
        box_x = goal_x - (1 if team == 0 else -1) * self.rng.uniform(4, 15, 20)
        box = np.stack([box_x, self.rng.uniform(22, 46, 20)], axis=1)
        self.pos[squad] = box[:10]
        self.pos[opponents] = box[10:]
        taker = int(squad[0])
        self.pos[taker] = flag + [(-1.0 if team == 0 else 1.0), (1.0 if side < 34 else -1.0)]
        self.targets = self.pos.copy()
        self.speed[:] = 1.5
        self.ball = np.array([flag[0], flag[1], 0.0])
        self.cam_focus = lambda: np.array([goal_x - (1 if team == 0 else -1) * 12, (34 + side) / 2, 0.0])
        self.wait(self.seconds(1.5, 3.0))
        self.targets[taker] = flag
        self.speed[taker] = 3.0
        self.wait(0.5)
        land = np.array([goal_x - (1 if team == 0 else -1) * self.seconds(5, 11), self.seconds(28, 40), 1.5])
        self.cam_focus = lambda: self.ball.copy()
        self._fly(land, speed=18.0, peak=3.0, label_at_start="Corner")
        squad_or_not = np.concatenate([squad[1:], opponents])
        self.holder = int(squad_or_not[np.argmin(np.linalg.norm(self.pos[squad_or_not] - land[:2], axis=1))])
        self.ball[2] = 0.0

    def goal_kick(self, team: int) -> None:
        """An unlabelled restart: the keeper kicks from the goal area."""
        keeper = 11 * team
        goal_x = 0.0 if team == 0 else 105.0
        spot = np.array([goal_x + (5.0 if team == 0 else -5.0), 34.0 + self.rng.choice([-6.0, 6.0])])
        self.pos[keeper] = spot - [(1.0 if team == 0 else -1.0), 0]
        self.ball = np.array([spot[0], spot[1], 0.0])
        self.cut(view=self.seconds(35, 55))
        self.targets = self._formation()
        self.wait(self.seconds(1.5, 2.5))
        land = np.array([52.5 + (-8 if team == 0 else 8), self.seconds(15, 53), 0.0])
        self._fly(land, speed=18.0, peak=8.0)
        self.holder = None
        self.open_play(0.1, team=int(self.rng.integers(2)))

    def foul(self) -> None:
        """A player brings another down; play stops, the referee runs to the
        offender and raises an arm, holding up a card (labelled at the first
        frame it is up) or only pointing. A free kick restarts play."""
        victim_team = int(self.rng.integers(2))
        squad = np.arange(11 * victim_team + 1, 11 * victim_team + 11)
        opponents = np.arange(11 * (1 - victim_team) + 1, 11 * (1 - victim_team) + 11)
        victim = int(squad[np.argmin(np.linalg.norm(self.pos[squad] - self.ball[:2], axis=1))])
        offender = int(opponents[np.argmin(np.linalg.norm(self.pos[opponents] - self.pos[victim], axis=1))])
        self.pos[offender] = self.pos[victim] + self.rng.normal(0, 0.8, 2)
        self.holder = None
        self.pose[victim] = draw.LYING
        self.targets = self.pos.copy()
        self.speed[:] = 1.0
        self.ball[2] = 0.0
        self.wait(self.seconds(0.8, 1.6))
        roll = self.rng.random()
        card = 1 if roll < self.cfg.yellow_card else (2 if roll < self.cfg.yellow_card + self.cfg.red_card else 0)
        stand = self.pos[offender] + [self.rng.choice([-1.2, 1.2]), -0.8]
        self.ref_target = stand
        self.targets = self._formation() * 0.3 + self.pos * 0.7
        self.speed[:] = 1.5
        self.cam_focus = lambda: np.array([*self.ref, 0.0])
        walk = 0
        while np.linalg.norm(self.ref - stand) > 0.3 and walk < int(4.0 / self.dt):
            self.tick()
            walk += 1
        if self.rng.random() < self.cfg.closeup_probability:
            self.cut(view=self.seconds(7.0, 13.0), target=np.array([self.ref[0], self.ref[1], 1.0]), closeup=True)
        self.wait(self.seconds(0.4, 1.6))
        if card:
            self.ref_pose = draw.CARD_UP
            self.card = card
            self.event("Yellow card" if card == 1 else "Red card")
        else:
            self.ref_pose = draw.POINTING
        self.wait(self.seconds(*self.cfg.card_seconds))
        self.ref_pose = draw.STAND
        self.card = 0
        self.wait(self.seconds(0.4, 1.0))
        self.closeup = False
        self.pose[victim] = draw.STAND
        self.cut(view=self.seconds(30, 50))
        self.wait(self.seconds(0.5, 1.2))
        self.holder = int(squad[np.argmin(np.linalg.norm(self.pos[squad] - self.ball[:2], axis=1))])
        self.pos[self.holder] = self.ball[:2] - [1.0 if victim_team == 0 else -1.0, 0.0]
        self._pass()

    def script(self, salt: int, kits: list[draw.Kit]) -> MatchScript:
        n = self.frame
        return MatchScript(
            ball=self.out_ball[:n], players=self.out_players[:n], lift=self.out_lift[:n], pose=self.out_pose[:n],
            referee=self.out_referee[:n], referee_pose=self.out_referee_pose[:n], card=self.out_card[:n],
            camera_target=self.out_cam_target[:n], camera_view=self.out_cam_view[:n],
            events=sorted(self.events, key=lambda e: (e.frame, e.label)), kits=kits, salt=salt)


def _kits(rng: np.random.Generator) -> list[draw.Kit]:
    home, away, keeper0, keeper1 = rng.choice(len(_KIT_COLOURS), size=4, replace=False)
    shorts = np.array([[240, 240, 240], [20, 20, 30]], dtype=np.float32)
    kits = [
        draw.Kit(_KIT_COLOURS[home], shorts[rng.integers(2)], _KIT_COLOURS[home]),
        draw.Kit(_KIT_COLOURS[away], shorts[rng.integers(2)], _KIT_COLOURS[away]),
        draw.Kit(_KIT_COLOURS[keeper0] * 0.8, shorts[1], _KIT_COLOURS[keeper0] * 0.8),
        draw.Kit(_KIT_COLOURS[keeper1] * 0.8, shorts[1], _KIT_COLOURS[keeper1] * 0.8),
    ]
    ref_shirt = _REFEREE_SHIRTS[rng.integers(len(_REFEREE_SHIRTS))]
    kits.append(draw.Kit(ref_shirt, np.array([15, 15, 18], np.float32), np.array([15, 15, 18], np.float32)))
    return kits


def random_streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the match and for the detector, so detector
    settings never change the video."""
    match_seq, detector_seq = np.random.SeedSequence([seed, index]).spawn(2)
    return np.random.default_rng(match_seq), np.random.default_rng(detector_seq)


def simulate_match(cfg: SynthConfig, seed: int, index: int = 0) -> MatchScript:
    """Play match ``index`` of the dataset seeded by ``seed``."""
    rng, _ = random_streams(seed, index)
    kits = _kits(rng)
    salt = int(rng.integers(1 << 30))
    simulator = _MatchSimulator(cfg, rng)
    simulator.run()
    return simulator.script(salt, kits)

