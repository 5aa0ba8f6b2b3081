"""The core imports no vendor SDK and no textual: `flymigrate plan` starts fast (design.md layering)."""

from __future__ import annotations

import subprocess
import sys

from .helpers import EXAMPLE, REPO

HEAVY = ("textual", "modal", "boto3", "botocore", "google", "huggingface_hub", "runpod", "grpclib", "rich", "yaml")


def test_plan_imports_no_sdk():
    code = (
        "import sys, io, contextlib\n"
        "from flymigrate.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['plan', {str(EXAMPLE)!r}, '--to', 'modal'])\n"
        "assert rc == 0, rc\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_core_modules_import_nothing_heavy():
    mods = ["flymigrate.api", "flymigrate.model", "flymigrate.planner", "flymigrate.parse.flytoml",
            "flymigrate.targets.modal", "flymigrate.targets.runpod", "flymigrate.targets.cloudrun",
            "flymigrate.transfer"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in mods) + (
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


# ---------------------------------------------------------------- the import rules, read from the source (ast)

import ast  # noqa: E402
import functools  # noqa: E402
from pathlib import Path  # noqa: E402

PKG = REPO / "flymigrate"
SDKS = ("modal", "runpod", "boto3", "botocore", "s3transfer", "google", "huggingface_hub", "grpclib", "textual")
# packages and modules that are allowed to name targets: the targets themselves, the transfer backends (one per
# store), and the CLI/TUI layers only through the registry (they are checked below like everything else)
NAMING_ALLOWED = ("targets/", "transfer/")
# the layers above the core: they may import anything of the core
UPPER = ("apply/", "tui/", "commands/", "transfer/", "targets/", "verify/", "cli.py", "__main__.py", "api.py")
KNOWN_CORE_TO_APPLY: set[tuple[str, str]] = set()  # the rewrite moved into the core (flymigrate/rewrite.py)


@functools.lru_cache(maxsize=1)  # parsed once for the checks below (they only read the trees)
def _modules() -> tuple[tuple[str, ast.Module], ...]:
    return tuple((str(p.relative_to(PKG)), ast.parse(p.read_text(encoding="utf-8"), str(p)))
                 for p in sorted(PKG.rglob("*.py")))


def _imports(rel: str, tree: ast.Module) -> list[tuple[str, bool]]:
    """(absolute module, at module level?) for every import in the file, lazy ones included."""
    pkg = ["flymigrate", *Path(rel).parent.parts]
    top = {id(n) for n in tree.body}
    top |= {id(n) for t in tree.body if isinstance(t, (ast.If, ast.Try)) for n in ast.walk(t)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" for a in node.names] if not node.module else [mod]
            out += [(m, id(node) in top) for m in names]
    return out


def _target_names() -> set[str]:
    from flymigrate.targets import names

    return set(names())


def test_no_module_outside_targets_names_a_target():
    """Every list of targets comes from the registry: outside targets/, transfer/ and data files no module has a
    target's name as a string literal (docstrings and prose that merely mention a platform are fine)."""
    bad = []
    tnames = _target_names()
    assert {"modal", "runpod", "cloudrun"} <= tnames
    for rel, tree in _modules():
        if rel.startswith(NAMING_ALLOWED):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in tnames:
                bad.append(f"flymigrate/{rel}:{node.lineno}: {node.value!r}")
    assert not bad, "modules that name a target (ask flymigrate.targets instead):\n" + "\n".join(bad)


def test_the_ast_check_catches_a_target_name():
    # the check above is only worth something if it sees a literal where one is
    tree = ast.parse("def f(t):\n    return t == 'runpod'\n")
    assert [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in _target_names()] == [
        "runpod"]


def test_core_imports_no_sdk_no_textual_nothing_from_apply_or_tui():
    """The core (everything but the layers above it) imports no vendor SDK and no textual -- not even lazily --
    and nothing from apply/ or tui/; rich only inside a function (the rich renderers)."""
    bad = []
    seen_known = set()
    for rel, tree in _modules():
        if rel.startswith(UPPER):
            continue
        for mod, at_top in _imports(rel, tree):
            root = mod.split(".")[0]
            if root in SDKS:
                bad.append(f"flymigrate/{rel} imports {mod}")
            elif root == "rich" and at_top:
                bad.append(f"flymigrate/{rel} imports rich at module level")
            elif mod.startswith(("flymigrate.apply", "flymigrate.tui", "flymigrate.commands", "flymigrate.cli")):
                if (rel, mod) in KNOWN_CORE_TO_APPLY:
                    seen_known.add((rel, mod))
                else:
                    bad.append(f"flymigrate/{rel} imports {mod}")
    assert not bad, "\n".join(bad)
    assert seen_known == KNOWN_CORE_TO_APPLY, f"fixed: remove {KNOWN_CORE_TO_APPLY - seen_known} from the list"


def test_targets_import_sdks_only_lazily_and_nothing_above_them():
    bad = []
    for rel, tree in _modules():
        if not rel.startswith("targets/"):
            continue
        for mod, at_top in _imports(rel, tree):
            if mod.split(".")[0] in SDKS and at_top:
                bad.append(f"flymigrate/{rel} imports {mod} at module level (import it inside the deploy call)")
            if mod.startswith(("flymigrate.apply", "flymigrate.tui", "flymigrate.commands", "flymigrate.cli",
                               "flymigrate.api", "flymigrate.compare")):
                bad.append(f"flymigrate/{rel} imports {mod}")
    assert not bad, "\n".join(bad)


def test_api_reaches_apply_and_tui_only_lazily():
    tree = next(t for rel, t in _modules() if rel == "api.py")
    top = [m for m, at_top in _imports("api.py", tree)
           if at_top and m.startswith(("flymigrate.apply", "flymigrate.tui")) or at_top and m.split(".")[0] in SDKS]
    assert not top, top


def test_textual_only_under_tui_and_not_in_its_headless_part():
    """docs/architecture.md, "The TUI": Textual is imported only under tui/, and tui/core.py and tui/state.py (what
    the pages show, what the walkthrough remembers) import none of it, so they are tested without a terminal."""
    bad = []
    for rel, tree in _modules():
        headless = rel in ("tui/core.py", "tui/state.py")
        for mod, _at_top in _imports(rel, tree):
            if mod.split(".")[0] == "textual" and (headless or not rel.startswith("tui/")):
                bad.append(f"flymigrate/{rel} imports {mod}")
    assert not bad, "\n".join(bad)
