"""The package's import layering: each stage imports only the stages before
it, so a newcomer can read the tree in data-flow order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import uglspot

ROOT = Path(uglspot.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every ``uglspot...`` module a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("uglspot"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("uglspot"))
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package, forbidden", [
    ("entities", "uglspot.data"),
    ("data", "uglspot.synth"),
    ("entities", "uglspot.synth"),
])
def test_lower_stages_do_not_import_higher_ones(package: str, forbidden: str) -> None:
    offenders = [f"{path.relative_to(ROOT)} imports {name}" for path in files(package)
                 for name in sorted(imported_modules(path)) if name == forbidden or name.startswith(forbidden + ".")]
    assert not offenders


def test_commands_import_neither_each_other_nor_the_cli() -> None:
    commands = {p.stem for p in files("commands") if p.stem != "__init__"}
    offenders = []
    for path in files("commands"):
        for name in sorted(imported_modules(path)):
            parts = name.split(".")
            if name.startswith("uglspot.cli") or (parts[:2] == ["uglspot", "commands"] and len(parts) > 2
                                                 and parts[2] in commands):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders


def test_commands_use_no_helper_of_the_training_loop() -> None:
    offenders = [f"{path.relative_to(ROOT)} imports {name}" for path in files("commands")
                 for name in sorted(imported_modules(path))
                 if name.startswith("uglspot.engine.train.") and name != "uglspot.engine.train.train"]
    assert not offenders


def test_where_things_live_matches_the_tree() -> None:
    import re

    readme = (ROOT.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`src/uglspot/([\w/.]+?)/?`", section))
    assert all((ROOT / name).exists() for name in named), sorted(n for n in named if not (ROOT / n).exists())
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert packages <= named, sorted(packages - named)


def test_every_function_fits_a_screen_and_the_training_loop_stays_short() -> None:
    """Issue 9's sizes: no function in src/ of 80 lines or more, and
    engine/train.py (the loop a newcomer reads first) under 350 lines."""
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length >= 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these functions: " + "; ".join(long)
    lines = len((ROOT / "engine" / "train.py").read_text(encoding="utf-8").splitlines())
    assert lines < 350, f"engine/train.py has {lines} lines; move helpers out of the loop's module"
