"""Step 4: point clients at the new URL: the plan's files, through the one URL rewriter."""

from __future__ import annotations

from typing import Any

from ...requestauth import Edit, analyze, apply_edits, hit_offsets
from ...scan import find_in_text, read_text_enc, rename_env_reads, rewrite_url
from ..context import TITLES, Context, FileChange, StepPreview


def preview_base_urls(ctx: Context) -> StepPreview:
    """Rewrite exactly the plan's hits (same walk, encodings and skip rules as the plan's scan; ``--code`` too)."""
    p = StepPreview("base_urls", TITLES["base_urls"], "ready", "")
    new_base = ctx.base_url
    changes: list[FileChange] = []
    private: list[str] = []
    by_path: dict[str, list[Any]] = {}
    for h in ctx.plan.base_urls:
        if h.kind == "fdaa":
            p.notes.append(f"{h.path}:{h.line}: literal 6PN address {h.old} left as is: check whether it pointed at "
                           "this app and replace it by hand")
            continue
        by_path.setdefault(h.path, []).append(h)
        if h.kind in ("flycast", "internal"):
            private.append(f"{h.path}:{h.line}")
    for shown, hits in by_path.items():
        fp = ctx.app_dir / shown
        if fp.is_symlink():
            p.notes.append(f"{shown} is a symlink: not rewritten (edit its target)")
            continue
        try:
            got = read_text_enc(fp)
        except OSError:
            continue
        if got is None:
            continue
        text, enc = got
        # the same finder the plan's scan ran, on the same decoded text: the plan's hits (all of them, also past
        # the plan's per-file listing cap in a log full of the URL)
        found, _ = find_in_text(text, ctx.plan.app, shown)
        hits = [h for h in found if h.kind != "fdaa"]
        if new_base:
            # one set of edits on the text as the plan read it: the URLs, and the target's auth header where the
            # file's requests call the app (the plan's "sends ..." lines: flymigrate.requestauth, same analysis)
            renames = ctx.dep.client_env_renames
            edits = [Edit(a, b, rewrite_url(text[a:b], new_base)) for a, b in hit_offsets(text, hits)]
            auth = analyze(text, shown, hits, ctx.dep.client_auth, renames)
            p.notes += [f"by hand: {s.plan_line}" for s in auth.manual]
            try:
                new = rename_env_reads(apply_edits(text, edits + auth.edits), renames)
            except ValueError:  # an auth edit over a URL (never seen): the URLs only, the requests by hand
                new = rename_env_reads(apply_edits(text, edits), renames)
                p.notes += [f"by hand: {s.path}:{s.line}: add `{s.what}`" for s in auth.changes]
            changes.append(FileChange(shown, fp, text, new, encoding=enc))
        else:
            changes.append(FileChange(shown, fp, text, text, encoding=enc))
            p.notes += [f"{shown}:{h.line}: {h.old}" for h in hits]
    if not changes:
        p.status = "nothing_to_do"
        p.summary = "No base URLs of this app left in the code."
        return p
    if not new_base:
        p.status = "manual"
        p.summary = (f"{len(changes)} file(s) still use the Fly URL, but the new URL is not known yet: pass "
                     "--base-url URL (or --deploy); a placeholder is never written into code.")
        p.changes = []
        return p
    p.changes = changes
    p.summary = f"{len(changes)} file(s): Fly URLs -> {new_base}"
    if private:
        where = sorted(set(private))
        more = f" and {len(where) - 20} more" if len(where) > 20 else ""
        p.notes.append("add authentication: these used a private .flycast/.internal/fdaa address and now reach a "
                       "public endpoint: " + ", ".join(where[:20]) + more)
    return p
