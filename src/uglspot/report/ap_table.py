"""The AP table of one or more variants: AP per class and the mean at each
tolerance, variants side by side and, for two, the difference (second
minus first). One builder for the demo's text table and the HTML report's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class APRow:
    """One class (or the mean, label ``mAP``) across variants and tolerances."""

    label: str
    events: int  # ground-truth events of the class (all of them for the mean)
    values: dict[int, tuple[float | None, ...]]  # tolerance -> AP of each variant, fractions; None: no truth
    deltas: dict[int, float | None]  # tolerance -> second minus first variant (None: one missing, or not two)


def ap_rows(results: Mapping[str, Any], classes: Sequence[str], counts: Mapping[str, int],
            tolerances: Sequence[int]) -> list[APRow]:
    """A row per class of ``classes`` and a last ``mAP`` row, from
    ``results`` (variant -> ``FrameMapResult``) and the events per class."""
    variants = list(results)

    def row(label: str, events: int, value: Callable[[Any, int], float | None]) -> APRow:
        values = {t: tuple(value(results[v], t) for v in variants) for t in tolerances}
        deltas = {t: (v[1] - v[0] if len(v) == 2 and None not in v else None) for t, v in values.items()}
        return APRow(label, events, values, deltas)

    rows = [row(label, counts.get(label, 0), lambda r, t, label=label: r.per_class[t].get(label))
            for label in classes]
    rows.append(row("mAP", sum(counts.values()), lambda r, t: r.map[t]))
    return rows
