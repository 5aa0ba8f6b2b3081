"""Every fixture and corpus app, every target: apply (no remote steps), apply again -> nothing changes; the
originals are kept byte for byte in .flymigrate/backup/. Corpus apps are copied to a temp dir, never into the repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flymigrate import api
from flymigrate.apply import ApplyOptions
from flymigrate.errors import UserError

from .conftest import tree
from .test_golden import APPS, BASE_URL, TARGETS


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name,app_dir", APPS, ids=[a[0] for a in APPS])
def test_apply_twice_is_a_noop(name: str, app_dir: Path, target: str, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(app_dir, app, symlinks=True)
    original = tree(app)
    opts = ApplyOptions(target=target, skip=("weights", "secrets"), base_url=BASE_URL, volume_id="vol-test",
                        datacenter="EU-RO-1", bucket="test-bucket")
    try:
        api.apply(app, target, options=opts)
    except UserError as exc:
        pytest.skip(f"the planner refuses this app: {exc}")
    first = tree(app)
    api.apply(app, target, options=opts)
    assert tree(app) == first
    backups = app / ".flymigrate" / "backup"
    for rel, data in first.items():
        if rel.startswith(".flymigrate/backup/"):
            assert original[rel[len(".flymigrate/backup/"):]] == data
    for rel, data in original.items():
        if first.get(rel) != data:
            assert (backups / rel).read_bytes() == data, f"{rel} changed without a backup"
