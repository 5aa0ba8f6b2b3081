"""Pure text rewrites for the Dockerfile step: the image and the app's own scripts, minus what only Fly needed.

Every function here takes text and returns text (plus human notes); no I/O. The executor always rewrites from the
*original* file (the backup), so running the rewrite twice never stacks changes. The plan runs the same code to
know which of its findings the rewrite really fixes (``dockerfile_checks``), so plan and apply cannot disagree.

What changes (research/fly.md sections 1.13, 2, 7), rule by rule (``rules.py`` holds the text rules; the
whole-file rules are below):
- driver shims (``ldconfig``, ``nvidia-smi``, removing the CUDA stubs) are removed: the targets' container
  runtimes inject the NVIDIA driver themselves;
- ``/opt/nvidia/entrypoint.d/*fly*`` hooks are dropped;
- ``$FLY_APP_NAME`` / ``$FLY_REGION`` / ``$FLY_MACHINE_ID`` ... become explicit values;
- IPv6-only binds (``[::]``, ``::``, ``fly-local-6pn``, ``inet6_tcp``) become ``0.0.0.0`` / IPv4;
- weight downloads baked into image layers are dropped when the weights step puts them on the mounted volume;
- ``[[files]]`` with a ``local_path`` become ``COPY`` lines; ``[processes]`` / ``[experimental] cmd|entrypoint``
  become an explicit ``CMD`` / ``ENTRYPOINT``;
- a final stage on a CPU-only base (``python:3.11-slim``...) gets a CUDA runtime base;
- RunPod: the app's weights path is linked to ``/runpod-volume/<app>`` (where RunPod mounts network volumes);
- when the target's gateway takes its own key in ``Authorization`` (RunPod), a server's own ``--api-key`` goes
  (``rules.APP_KEY``; the Deployment also keeps the env variable the server falls back to out of the worker).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from typing import TYPE_CHECKING

from .model import DockerInstruction, Dockerfile, FileInjection, FlyApp
from .parse.dockerfile import parse_dockerfile_text
from .rules import (
    CUDA_BASE,
    FLY_ENTRYPOINT_D_RE,
    MARK,
    Check,
    RewriteContext,
    check_instruction,
    check_script,
    fix_env_value,
    fix_instruction,
    fix_ipv6,
    fix_script,
    fly_value,
    needs_cuda_base,
)

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass

__all__ = [
    "CUDA_BASE", "MARK", "RewriteContext", "effective_command", "fix_env_value", "fix_fly_vars", "fix_ipv6",
    "fly_value", "rewrite_dockerfile", "rewrite_dockerfile_checked", "thin_dockerfile", "rewrite_script", "dockerfile_checks", "script_checks",
    "explicit_command_lines", "files_lines", "runpod_link_lines", "served_process_command", "NO_CUDA", "FILES",
    "COMMAND", "REGISTRY",
]


def fix_fly_vars(text: str, ctx: RewriteContext, where: str) -> str:
    from .rules import FLY_ENV

    return FLY_ENV.substitute(text, ctx, where)


def _json_cmd(argv: list[str] | tuple[str, ...]) -> str:
    return json.dumps(list(argv))


# ------------------------------------------------------------------ whole-file rules (detector + fixer each)


@dataclass(frozen=True)
class NoCudaRule:
    """A GPU app whose final base has no CUDA user space: the FROM is swapped for a CUDA runtime base."""

    kind: str = "no-cuda"
    fix_text: str = f"switch the base to {CUDA_BASE}"

    def detect(self, df: Dockerfile, uses_gpu: bool) -> str | None:
        return needs_cuda_base(df) if uses_gpu else None

    def fix(self, from_args: str) -> list[str] | None:
        toks = from_args.split()
        img_i = next((i for i, t in enumerate(toks) if not t.startswith("--")), None)
        if img_i is None:
            return None
        old_img = toks[img_i]
        toks[img_i] = CUDA_BASE
        new = [f"{MARK} was FROM {old_img} (no CUDA user-space; on Fly the host injected the driver libs)",
               "FROM " + " ".join(toks)]
        if old_img.split("/")[-1].startswith("python"):
            new += [f"{MARK} the CUDA base has no Python: install the distribution's (3.10 on Ubuntu 22.04)",
                    ("RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip "
                     "python-is-python3 && rm -rf /var/lib/apt/lists/*")]
        return new


@dataclass(frozen=True)
class FilesRule:
    """[[files]] Fly injected at deploy time: a local file becomes a COPY; a secret or inline value cannot."""

    kind: str = "files"

    def detect(self, app: FlyApp) -> list[FileInjection]:
        return list(app.files)

    def fixable(self, f: FileInjection) -> bool:
        return bool(f.local_path) or bool(FLY_ENTRYPOINT_D_RE.search(f.guest_path))

    def already_copied(self, f: FileInjection, df: Dockerfile | None, app: FlyApp) -> bool:
        """Whether the Dockerfile's final stage already puts ``f``'s local file at its guest path (then the
        [[files]] entry added nothing the image lacks, and no COPY is written for it)."""
        return bool(df is not None and f.local_path and
                    copies_to(df, f.local_path, f.guest_path, ignore=app.build.ignore) is not None)

    def fixed_in(self, f: FileInjection, dockerfile_text: str | None) -> bool:
        """Whether a rewritten Dockerfile carries the fix for ``f``."""
        if FLY_ENTRYPOINT_D_RE.search(f.guest_path):  # dropped: nothing may copy it in
            return dockerfile_text is None or f"COPY {f.local_path} {f.guest_path}" not in dockerfile_text
        return bool(dockerfile_text and f.local_path and f"COPY {f.local_path} {f.guest_path}" in dockerfile_text)

    def lines(self, app: FlyApp, ctx: RewriteContext, df: Dockerfile | None = None) -> list[str]:
        """The COPY lines for ``app``'s [[files]]; ``df``: the Dockerfile they go into (files it already copies
        to the same place get none)."""
        lines: list[str] = []
        for f in app.files:
            if FLY_ENTRYPOINT_D_RE.search(f.guest_path):
                ctx.notes.append(f"[[files]] {f.guest_path}: a Fly-only driver hook, not copied")
                continue
            if self.already_copied(f, df, app):
                continue
            if f.local_path:
                if not lines:
                    lines.append(f"{MARK} [[files]] from fly.toml (Fly injected them at deploy time)")
                lines.append(f"COPY {f.local_path} {f.guest_path}")
                if f.guest_path.endswith(".sh") or "entrypoint" in f.guest_path or \
                        "start" in f.guest_path.rsplit("/", 1)[-1]:
                    lines.append(f"RUN chmod +x {f.guest_path}")
            elif f.secret_name:
                ctx.notes.append(f"[[files]] {f.guest_path} came from the secret {f.secret_name}: mount that secret "
                                 "as a file on the target (it is not baked into the image)")
            else:
                ctx.notes.append(f"[[files]] {f.guest_path} had an inline raw_value: write that file into the image "
                                 "yourself (flymigrate does not copy inline values)")
        return lines


def served_process_command(app: FlyApp) -> tuple[str, str] | None:
    """(group, command) of the process group the HTTP service routes to."""
    if not app.processes:
        return None
    procs = dict(app.processes)
    svc = app.primary_service
    if svc and svc.processes:
        for g in svc.processes:
            if g in procs:
                return g, procs[g]
    if "app" in procs:
        return "app", procs["app"]
    return app.processes[0]


@dataclass(frozen=True)
class CommandRule:
    """fly.toml's deploy-time command overrides ([experimental] cmd/entrypoint, [processes]) become explicit
    ENTRYPOINT / CMD lines."""

    def detect(self, app: FlyApp) -> list[str]:
        kinds = []
        if app.experimental_entrypoint or app.experimental_cmd:
            kinds.append("cmd")
        if app.processes:
            kinds.append("processes")
        return kinds

    def raw_lines(self, app: FlyApp) -> list[str]:
        """The ENTRYPOINT / CMD lines exactly as fly.toml gives the commands."""
        lines: list[str] = []
        if app.experimental_entrypoint:
            lines.append(f"{MARK} [experimental] entrypoint from fly.toml (Fly set it at deploy time)")
            lines.append(f"ENTRYPOINT {_json_cmd(_argv(app.experimental_entrypoint))}")
        served = served_process_command(app)
        if served:
            group, cmd = served
            try:
                argv = shlex.split(cmd)
            except ValueError:
                argv = ["sh", "-c", cmd]
            lines.append(f"{MARK} [processes] {group} from fly.toml (the HTTP service's process group)")
            lines.append(f"CMD {_json_cmd(argv)}")
        elif app.experimental_cmd:
            lines.append(f"{MARK} [experimental] cmd from fly.toml (Fly set it at deploy time)")
            lines.append(f"CMD {_json_cmd(_argv(app.experimental_cmd))}")
        return lines

    def lines(self, app: FlyApp, ctx: RewriteContext | None = None) -> list[str]:
        """The lines written: fly.toml's commands go through the same text rules as the Dockerfile's own
        (a shim, an IPv6 bind or a $FLY_* variable in a [processes] command is fixed too)."""
        ctx = ctx or RewriteContext(app, "", app.app or "app", False)
        out: list[str] = []
        for ln, fixed in self._fixed(app, ctx):
            out += fixed if fixed is not None else [ln]
        return out

    def _fixed(self, app: FlyApp, ctx: RewriteContext) -> list[tuple[str, list[str] | None]]:
        res = []
        for ln in self.raw_lines(app):
            if ln.startswith(MARK):
                res.append((ln, None))
                continue
            kw, args = ln.split(" ", 1)
            res.append((ln, fix_instruction(kw, args, ln, ctx, app.config_path)))
        return res

    def checks(self, app: FlyApp, ctx: RewriteContext) -> list[Check]:
        """Text-rule findings in fly.toml's commands, and whether the written lines are free of them."""
        out: list[Check] = []
        scratch = RewriteContext(app, ctx.target, ctx.app_slug, ctx.drop_baked, drop_app_auth=ctx.drop_app_auth)
        for ln, fixed in self._fixed(app, scratch):
            if not ln.startswith(MARK):
                kw, args = ln.split(" ", 1)
                out += check_instruction(kw, args, 0, fixed, scratch)
        return out

    def fixed_in(self, app: FlyApp, dockerfile_text: str | None) -> bool:
        want = [ln for ln in self.lines(app) if not ln.startswith(MARK)]
        have = set((dockerfile_text or "").split("\n"))
        return bool(dockerfile_text) and all(ln in have for ln in want)


def _argv(cmd: tuple[str, ...] | list[str]) -> list[str]:
    """fly.toml's ``cmd = "python3 server.py"`` (a string, which flyctl keeps as one element) as the argv it
    means: split into words. A Docker CMD ``["python3 server.py"]`` would run a program of that name, which does
    not exist (research/platforms-2026.md "Fly facts"). A string that is not plain words runs under ``sh -c``."""
    argv = list(cmd)
    if len(argv) == 1 and any(ch.isspace() for ch in argv[0].strip()):
        text = argv[0].strip()
        if re.search(r"[|&;<>()$`*?]", text):
            return ["sh", "-c", text]
        try:
            return shlex.split(text)
        except ValueError:
            return ["sh", "-c", text]
    return argv


@dataclass(frozen=True)
class RegistryRule:
    """An image in Fly's private registry: it must be re-pushed by hand (no fixer)."""

    kind: str = "registry"

    def detect(self, app: FlyApp) -> bool:
        return bool(app.build.image and app.build.image.startswith("registry.fly.io/"))


_GLOB = re.compile(r"[*?\[]")
_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst)$")


def _copy_operands(ins: DockerInstruction) -> tuple[list[str], str] | None:
    """(sources, destination) of a COPY / ADD from the build context, or None when flymigrate cannot tell
    where it puts things (another stage, variables, --parents / --exclude, URLs and archives ADD unpacks)."""
    args = ins.args.strip()
    flags: list[str] = []
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        flags.append(flag)
        args = args.lstrip()
    if any(fl.startswith(("--from", "--parents", "--exclude")) for fl in flags):
        return None
    if args.startswith("["):
        try:
            toks = json.loads(args)
        except ValueError:
            return None
        if not isinstance(toks, list) or not all(isinstance(t, str) for t in toks):
            return None
    else:
        try:
            toks = shlex.split(args)
        except ValueError:
            return None
    if len(toks) < 2 or any("$" in t for t in toks):
        return None
    *srcs, dest = toks
    if ins.keyword == "ADD" and any("://" in x or _ARCHIVE.search(x) or x.startswith("git@") for x in srcs):
        return None
    return srcs, dest


def _ignored(rel: str, patterns: tuple[str, ...]) -> bool | None:
    """Whether the build context's .dockerignore leaves ``rel`` out (None: a ``!`` exception makes it unclear)."""
    import fnmatch

    hit = False
    for raw in patterns:
        pat = raw.strip()
        if not pat or pat.startswith("#"):
            continue
        if pat.startswith("!"):
            return None
        pat = posixpath.normpath(pat.lstrip("/"))
        parts = rel.split("/")
        # a pattern excludes the path itself or any folder above it; "**" matches across folders
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(x, pat) or fnmatch.fnmatchcase(x, pat.replace("**/", "")) for x in prefixes):
            hit = True
    return hit


def copies_to(df: Dockerfile, local: str, guest: str, *, ignore: tuple[str, ...] = ()) -> DockerInstruction | None:
    """The COPY / ADD in the final stage that puts the build context's ``local`` file at ``guest``, resolving
    WORKDIR, directory copies (``COPY . /app``, ``COPY src/ /app/src``) and destinations that are folders;
    ``ignore``: the context's .dockerignore patterns (a file they leave out is not copied). Conservative: None whenever it is not sure (a missing COPY costs a duplicate line, a wrong match a file)."""
    final = max((i for i, ins in enumerate(df.instructions) if ins.keyword == "FROM"), default=-1)
    loc = posixpath.normpath(local)
    if loc.startswith(("/", "..")):
        return None
    want = posixpath.normpath(guest)
    if _ignored(loc, ignore) is not False:
        return None
    workdir = "/"
    dirs = {"/"}  # folders known to exist in the image (WORKDIR creates one)
    found = None
    for ins in df.instructions[final + 1:]:
        if ins.keyword == "WORKDIR":
            wd = ins.args.strip().strip("\"'")
            if "$" in wd:
                return None
            workdir = posixpath.normpath(posixpath.join(workdir, wd))
            dirs.add(workdir)
            continue
        if ins.keyword not in ("COPY", "ADD"):
            continue
        ops = _copy_operands(ins)
        if ops is None:
            continue
        srcs, dest = ops
        dest_abs = posixpath.normpath(posixpath.join(workdir, dest))
        into_dir = dest.endswith("/") or len(srcs) > 1 or dest_abs in dirs or dest in (".", "./")
        landed = None
        for src in srcs:
            s = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
            if s == ".":
                landed = posixpath.join(dest_abs, loc)
            elif s == loc:
                landed = posixpath.join(dest_abs, posixpath.basename(loc)) if into_dir else dest_abs
            elif loc.startswith(s + "/"):  # a folder: its contents go into the destination
                landed = posixpath.join(dest_abs, loc[len(s) + 1:])
            elif _GLOB.search(s):
                import fnmatch

                if fnmatch.fnmatchcase(loc, s) and "/" not in loc[len(posixpath.dirname(s)):].lstrip("/"):
                    landed = posixpath.join(dest_abs, posixpath.basename(loc))
            if landed is not None:
                break
        if landed is not None and posixpath.normpath(landed) == want:
            found = ins
        elif dest_abs == want:
            found = None  # a later copy put something else there
        if into_dir or landed is not None:
            dirs.add(dest_abs)
    return found


NO_CUDA = NoCudaRule()
FILES = FilesRule()
COMMAND = CommandRule()
REGISTRY = RegistryRule()


def explicit_command_lines(app: FlyApp, ctx: RewriteContext | None = None) -> list[str]:
    """ENTRYPOINT / CMD lines that make fly.toml's deploy-time overrides explicit."""
    return COMMAND.lines(app, ctx)


def files_lines(app: FlyApp, ctx: RewriteContext) -> list[str]:
    return FILES.lines(app, ctx)


def runpod_link_lines(ctx: RewriteContext) -> list[str]:
    if not ctx.mount_path or not ctx.runpod_mount or ctx.mount_path in ("/", ""):
        return []
    parent = ctx.mount_path.rstrip("/").rsplit("/", 1)[0] or "/"
    return [f"{MARK} RunPod mounts the network volume at /runpod-volume; the app reads {ctx.mount_path}",
            f"RUN mkdir -p {parent} && rm -rf {ctx.mount_path} && ln -s {ctx.runpod_mount} {ctx.mount_path}"]


# ------------------------------------------------------------------ the Dockerfile


def _replacements(df: Dockerfile, lines: list[str], ctx: RewriteContext, uses_gpu: bool,
                  shown: str) -> tuple[dict[int, tuple[int, list[str]]], int | None]:
    """{instruction index: (first line index, new lines)} for every instruction that changes, and the line index
    of the final stage's first CMD/ENTRYPOINT (where generated lines go before)."""
    out: dict[int, tuple[int, list[str]]] = {}
    final_from = max((i for i, ins in enumerate(df.instructions) if ins.keyword == "FROM"), default=None)
    cuda_swap = NO_CUDA.detect(df, uses_gpu) is not None  # the same decision the plan shows
    explicit = COMMAND.lines(ctx.app, ctx)
    first_cmd_final = None
    for idx, ins in enumerate(df.instructions):
        start, end = ins.line - 1, ins.end_line  # [start, end)
        original = "\n".join(lines[start:end])
        kw = ins.keyword
        new: list[str] | None = None
        if kw == "FROM" and idx == final_from and cuda_swap:
            new = NO_CUDA.fix(ins.args)
        elif final_from is not None and idx > final_from and kw in ("CMD", "ENTRYPOINT") and \
                any(ln.startswith(kw + " ") for ln in explicit) and original not in explicit:
            new = [f"{MARK} replaced by the fly.toml command below: {original.strip()}"]
        else:
            new = fix_instruction(kw, ins.args, original, ctx, f"{shown}:{ins.line}")
        if new is not None:
            out[idx] = (start, new)
        if final_from is not None and idx > final_from and kw in ("CMD", "ENTRYPOINT") and first_cmd_final is None:
            first_cmd_final = start
    return out, first_cmd_final


def rewrite_dockerfile(text: str, ctx: RewriteContext, *, uses_gpu: bool, shown: str = "Dockerfile") -> str:
    """The portable Dockerfile. Idempotent on its own output (a second pass changes nothing). A finding the
    rewrite could not remove is named in ``ctx.notes`` ("fix it by hand")."""
    return rewrite_dockerfile_checked(text, ctx, uses_gpu=uses_gpu, shown=shown)[0]


def rewrite_dockerfile_checked(text: str, ctx: RewriteContext, *, uses_gpu: bool, shown: str = "Dockerfile",
                               parsed: Dockerfile | None = None) -> tuple[str, list[tuple[int, list[Check]]]]:
    """``rewrite_dockerfile`` and, for each instruction (by index) the text rules find something in, the
    findings with whether the written lines are free of them: one pass for the plan and for apply.
    ``parsed``: ``text`` already parsed (saves a parse)."""
    df = parsed if parsed is not None and parsed.text == text else parse_dockerfile_text(text, shown)
    lines = text.split("\n")
    trailing_nl = text.endswith("\n")
    if trailing_nl:
        lines = lines[:-1]
    repl, first_cmd_final = _replacements(df, lines, ctx, uses_gpu, shown)
    checks: list[tuple[int, list[Check]]] = []
    for idx, ins in enumerate(df.instructions):
        found = check_instruction(ins.keyword, ins.args, ins.line, repl[idx][1] if idx in repl else None, ctx)
        if found:
            checks.append((idx, found))
        for c in found:
            if not c.auto:
                ctx.notes.append(_by_hand(shown, c))
    replace = {start: (df.instructions[idx].end_line, new) for idx, (start, new) in repl.items()}
    out: list[str] = []
    i = 0
    extra_before_cmd = FILES.lines(ctx.app, ctx, df) + runpod_link_lines(ctx)
    already = set(lines)
    extra_before_cmd = _only_new(extra_before_cmd, already)
    cmd_lines = _only_new(COMMAND.lines(ctx.app, ctx), already)
    if not replace and not cmd_lines and not extra_before_cmd:
        return text, checks  # nothing Fly-only here: the file stays byte for byte
    inserted = False
    while i < len(lines):
        if first_cmd_final is not None and i == first_cmd_final and extra_before_cmd and not inserted:
            out += extra_before_cmd
            inserted = True
        if i in replace:
            end, new = replace[i]
            out += new
            i = end
            continue
        out.append(lines[i])
        i += 1
    if extra_before_cmd and not inserted:
        out += extra_before_cmd
    out += cmd_lines
    result = "\n".join(out)
    return (result + "\n" if trailing_nl or out else result), checks


def _by_hand(shown: str, c: Check) -> str:
    return (f"{shown}:{c.line}: {c.rule.kind} (`{c.what}`) could not be fixed automatically "
            f"({c.rule.fix_text}): fix it by hand")


def dockerfile_checks(df: Dockerfile, ctx: RewriteContext, *, uses_gpu: bool) -> list[tuple[int, list[Check]]]:
    """For each instruction (by index): what the text rules find in it and whether the rewrite removes it, from
    the very lines ``rewrite_dockerfile`` writes."""
    scratch = RewriteContext(ctx.app, ctx.target, ctx.app_slug, ctx.drop_baked, ctx.mount_path, ctx.runpod_mount,
                             drop_app_auth=ctx.drop_app_auth)
    return rewrite_dockerfile_checked(df.text, scratch, uses_gpu=uses_gpu, shown=df.path)[1]


def _only_new(block: list[str], existing: set[str]) -> list[str]:
    """Drop a generated block that the text already holds (idempotence when re-run on our own output)."""
    instr = [ln for ln in block if not ln.startswith(MARK)]
    if instr and all(ln in existing for ln in instr):
        return []
    return block


def thin_dockerfile(image: str, ctx: RewriteContext) -> str | None:
    """For ``[build] image`` apps: a Dockerfile ``FROM <image>`` carrying what must change, or None if nothing must."""
    body = FILES.lines(ctx.app, ctx) + runpod_link_lines(ctx) + COMMAND.lines(ctx.app, ctx)
    if not body:
        return None
    head = [f"{MARK} generated for [build] image = {image!r} in fly.toml: the image itself is unchanged;",
            f"{MARK} this adds what Fly applied at deploy time.",
            f"FROM {image}"]
    return "\n".join(head + body) + "\n"


def rewrite_script(text: str, ctx: RewriteContext, shown: str) -> str:
    """A shell script (start.sh, entrypoint): shims out, IPv6 binds to 0.0.0.0, FLY_* made explicit. A finding
    the rewrite could not remove is named in ``ctx.notes``."""
    for c in check_script(text, ctx, shown):
        if not c.auto:
            ctx.notes.append(_by_hand(shown, c))
    return fix_script(text, ctx, shown)


def script_checks(text: str, ctx: RewriteContext, rel: str) -> list[Check]:
    return check_script(text, ctx, rel)


def effective_command(dockerfile_text: str | None) -> tuple[list[str] | None, list[str] | None]:
    """(ENTRYPOINT, CMD) of the final stage as argv lists (shell form becomes ``sh -c``)."""
    if dockerfile_text is None:
        return None, None
    df = parse_dockerfile_text(dockerfile_text, "Dockerfile")
    ep: list[str] | None = None
    cmd: list[str] | None = None
    for ins in df.instructions:
        if ins.keyword == "FROM":
            ep, cmd = None, None
        elif ins.keyword in ("CMD", "ENTRYPOINT"):
            a = ins.args.strip()
            argv: list[str]
            if a.startswith("["):
                try:
                    argv = [str(x) for x in json.loads(a)]
                except ValueError:
                    argv = ["sh", "-c", a]
            else:
                argv = ["sh", "-c", a]
            if ins.keyword == "CMD":
                cmd = argv
            else:
                ep = argv
    return ep, cmd
