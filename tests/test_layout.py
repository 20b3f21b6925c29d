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


# The stages in import order: a module imports only stages on earlier steps (never one on its own
# step but another stage: post and metrics, report and synth stay apart), and the shared modules.
STAGES: list[tuple[str, ...]] = [("video",), ("entities",), ("data",), ("model",), ("post", "metrics"),
                                 ("engine",), ("report", "synth"), ("app",), ("commands",), ("cli",)]
ENTRY_POINT = "__main__"  # `python -m uglspot`: calls the CLI
SHARED = {"uglspot", "__init__", "__version__", "errors", "io", "config", "hub", "progress", "lock", "limits",
          "memory"}
# What a command may import: use cases, the argument helpers of commands/__init__.py, errors and
# the limits its number options are checked against.
COMMAND_IMPORTS = ("uglspot.app", "uglspot.errors", "uglspot.limits")
TESTS = ROOT.parents[1] / "tests"
BENCHMARKS = ROOT.parents[1] / "benchmarks"


def stage_of(module: str) -> str:
    """``uglspot.engine.infer`` → ``engine``; ``uglspot.__version__`` → ``__version__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def step_of(stage: str) -> int | None:
    return next((i for i, group in enumerate(STAGES) if stage in group), None)


def test_every_module_belongs_to_a_stage_or_is_shared() -> None:
    names = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    staged = {stage for group in STAGES for stage in group}
    assert names <= staged | SHARED | {ENTRY_POINT}, sorted(names - staged - SHARED - {ENTRY_POINT})


def test_each_stage_imports_only_the_stages_before_it() -> None:
    offenders = []
    for path in sorted(p for p in ROOT.rglob("*.py") if p.stem != ENTRY_POINT):
        own = path.relative_to(ROOT).parts[0].removesuffix(".py")
        mine = -1 if own in SHARED else step_of(own)  # a shared module imports shared ones only
        for name in sorted(imported_modules(path)):
            stage = stage_of(name)
            if stage in SHARED or stage == own:
                continue
            step = step_of(stage)
            if mine == -1 or step is None or step >= mine:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_the_readme_states_the_import_order() -> None:
    readme = (ROOT.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    assert "`" + " → ".join(", ".join(group) for group in STAGES) + "`" in section


def test_the_readme_names_the_shared_modules() -> None:
    import re

    readme = (ROOT.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    sentence = " ".join(section.split("The small shared modules", 1)[1].split(")", 1)[0].split())
    modules = {p.stem for p in ROOT.glob("*.py")} - {"__init__", ENTRY_POINT}
    assert set(re.findall(r"`(\w+)\.py`", sentence)) == SHARED & modules


def test_commands_import_only_use_cases_argument_helpers_and_errors() -> None:
    commands = {p.stem for p in files("commands")}

    def allowed(name: str) -> bool:
        if name.startswith(COMMAND_IMPORTS) or name == "uglspot.commands":
            return True
        parts = name.split(".")  # uglspot.commands.<helper>, a name of commands/__init__.py
        return parts[:2] == ["uglspot", "commands"] and len(parts) == 3 and parts[2] not in commands

    offenders = [f"{path.relative_to(ROOT)} imports {name}" for path in files("commands")
                 for name in sorted(imported_modules(path)) if not allowed(name)]
    assert not offenders, "\n".join(offenders)


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


def test_command_modules_stay_thin() -> None:
    """Parse, call one use case, print: about 80 lines a command (convert has three)."""
    long = {p.name: n for p in files("commands") if p.stem != "__init__"
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 90}
    assert not long, long


def test_tests_and_benchmarks_take_library_code_from_the_library_not_from_commands() -> None:
    """Only the CLI's own tests touch ``uglspot.commands``: the list of command
    modules, or a command module itself (to patch its ``run``); a function a
    test needs lives in a use case or below."""
    offenders = []
    for path in sorted(TESTS.glob("*.py")) + sorted(BENCHMARKS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("uglspot.commands"):
                names = {alias.name for alias in node.names}
                if node.module != "uglspot.commands" or not names <= {"command_modules"}:
                    offenders.append(f"{path.name}: from {node.module} import {', '.join(sorted(names))}")
    assert not offenders, offenders


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
