"""Stand-in for ``huggingface-cli download`` / ``hf download`` in a Dockerfile ``RUN`` (build time only).

Runs huggingface_hub's real ``snapshot_download`` against the loopback Hub the harness points ``HF_ENDPOINT`` at,
with the CLI's options: ``REPO [FILES...] [--local-dir D] [--cache-dir C] [--revision R] [--include P...]``.
With ``--local-dir`` the files land directly in ``D`` (huggingface_hub >= 0.23 writes real files there, plus a
``.cache/huggingface/`` metadata folder).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "download":
        print(f"huggingface-cli stand-in: only `download` is emulated, got {argv}", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog="huggingface-cli download")
    p.add_argument("repo_id")
    p.add_argument("filenames", nargs="*")
    p.add_argument("--local-dir")
    p.add_argument("--cache-dir")
    p.add_argument("--revision")
    p.add_argument("--include", nargs="*")
    p.add_argument("--exclude", nargs="*")
    p.add_argument("--token")
    p.add_argument("--repo-type", default="model")
    p.add_argument("--local-dir-use-symlinks")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv[1:])
    from huggingface_hub import snapshot_download

    pats = a.filenames or a.include or None
    path = snapshot_download(a.repo_id, revision=a.revision, local_dir=a.local_dir, cache_dir=a.cache_dir,
                             allow_patterns=pats, ignore_patterns=a.exclude, repo_type=a.repo_type)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
