"""flymigrate._dataclass behaves as dataclasses.dataclass for everything the package uses (start-up speed)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from flymigrate import _dataclass


def make(dc, fld):  # the same class bodies under either decorator
    @dc(frozen=True)
    class Point:
        x: int
        y: int = 0
        tags: tuple[str, ...] = ()
        extra: tuple[int, ...] = fld(default_factory=tuple)

    @dc(frozen=True)
    class Point3(Point):
        z: int = 9

    @dc
    class Box:
        w: int
        h: int = fld(default=2, repr=False)
        log: list[str] = fld(default_factory=list)

        def __post_init__(self) -> None:
            self.area = self.w * self.h

    @dc(frozen=True, eq=False)
    class ByIdentity:
        v: int

    @dc(frozen=True)
    class Secretish:
        name: str

        def __repr__(self) -> str:
            return "Secretish(<redacted>)"

    return Point, Point3, Box, ByIdentity, Secretish


STD = make(dataclasses.dataclass, dataclasses.field)
FAST = make(_dataclass.dataclass, _dataclass.field)


def observe(classes):
    Point, Point3, Box, ByIdentity, Secretish = classes
    out = []
    p = Point(1, tags=("a",))
    out.append(repr(p).split("Point", 1)[1])
    out.append((p == Point(1, 0, ("a",), ()), p != Point(2), hash(p) == hash(Point(1, 0, ("a",), ()))))
    out.append(dataclasses.astuple(p))
    out.append([f.name for f in dataclasses.fields(p)])
    out.append(dataclasses.replace(p, y=5).y)
    out.append(dataclasses.asdict(Point3(1, z=3)))
    out.append(repr(Point3(1)).split("Point3", 1)[1])
    out.append(Point3(1) == Point(1))
    for bad in (lambda: Point(), lambda: Point(1, 2, (), [], 5), lambda: Point(1, x=2), lambda: Point(1, q=2)):
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x  # type: ignore[misc]
    b = Box(3)
    out.append((b.area, repr(b).split("Box", 1)[1], Box(3) == Box(3)))
    with pytest.raises(TypeError):
        hash(b)  # eq without frozen: unhashable
    i = ByIdentity(1)
    out.append((i == ByIdentity(1), hash(i) == id(i) >> 4 or True))
    out.append(repr(Secretish("k")))
    out.append(dataclasses.is_dataclass(p) and dataclasses.is_dataclass(Point))
    out.append(Point.__match_args__)
    out.append(Box(1).log is not Box(1).log)  # a fresh list each time
    return out


def test_same_behaviour_as_the_standard_library():
    assert observe(FAST) == observe(STD)


def test_unsupported_options_are_refused_not_ignored():
    with pytest.raises(TypeError):
        @_dataclass.dataclass(order=True)
        class A:
            x: int


def test_the_plan_path_uses_it_and_a_plan_still_replaces_fields(tmp_path):
    from flymigrate import model

    assert model.dataclass is _dataclass.dataclass
    f = model.Finding("info", "x", "m")
    assert dataclasses.replace(f, where="fly.toml:1").where == "fly.toml:1"


def _other_pythons() -> list[str]:
    """Every other CPython >= 3.11 on this machine (PATH and pyenv): the core needs only the standard library there."""
    import glob
    import shutil
    import subprocess
    import sys

    found: dict[str, str] = {}
    cands = [shutil.which(f"python3.{m}") for m in range(11, 16)]
    cands += glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[1-9]*/bin/python3"))
    for c in filter(None, cands):
        try:
            v = subprocess.run([c, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                               text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if v and v != "%d.%d" % sys.version_info[:2] and v not in found:
            found[v] = c
    return sorted(found.values())


@pytest.mark.parametrize("python", _other_pythons() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no other Python >= 3.11 installed"))])
def test_plan_is_the_same_on_every_python(python: str) -> None:
    """The stand-in writes a private stdlib structure whose shape changed in 3.12: on such a Python it must step
    aside for the standard decorator, and `plan` must print the same JSON as on this one (3.12 crashed before)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    args = ["-m", "flymigrate", "plan", str(root / "examples" / "acme-chat"), "--to", "runpod", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    here = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120)
    there = subprocess.run([python, *args], capture_output=True, text=True, env=env, timeout=120)
    assert here.returncode == 0, here.stderr
    assert there.returncode == 0, there.stderr
    assert there.stdout == here.stdout
