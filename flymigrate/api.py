"""The facade both shells (CLI and TUI) call: load, plan, and later apply/transfer/status.

This module and everything it imports at module level stay free of textual and every vendor SDK, so that
``flymigrate plan`` starts fast; executors import their SDKs lazily.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError, UserError
from .gpus import GPU_SIZE_PRESETS, normalise_gpu_kind
from .model import Dockerfile, Finding, FlyApp, GpuSpec, Plan, SecretsExport
from .parse.dockerfile import env_names, load_dockerfile
from .parse.flytoml import load_fly_config
from .deployment import DeployOptions
from .planner import PlanInputs, build_plan, parse_gpu_arg
from .scan import scan_paths

CONFIG_NAMES = ("fly.toml", "fly.json", "fly.yaml", "fly.yml")
HINT_FILES_RE = re.compile(r"^(readme.*|makefile|justfile|.*\.sh|.*\.md|.*\.ya?ml|dockerfile|deploy.*)$", re.I)
GPU_FLAG_RE = re.compile(r"--vm-gpu-kind[= ]+[\"']?([a-z0-9-]+)|--vm-size[= ]+[\"']?([a-z0-9-]+)")
MAX_SCRIPT_BYTES = 1024 * 1024


def _dangling(p: Path) -> ConfigError | None:
    """A fly.toml that is a symbolic link leading nowhere (dangling, or a loop), said as such."""
    if p.is_symlink() and not p.exists():
        try:
            dest = os.readlink(p)
        except OSError:
            dest = "?"
        try:
            os.stat(p)
            what = "which cannot be read"
        except OSError as exc:
            import errno

            what = ("which leads back to itself (a symbolic link loop)" if exc.errno == errno.ELOOP
                    else "which does not exist (a dangling link)")
        return ConfigError(f"{p} is a symbolic link to {dest}, {what}.",
                           hint="Fix or remove the link, or point at the real file with --config PATH.")
    return None


# flyctl itself only reads APP_DIR/fly.toml (app.ResolveConfigFileFromPath in superfly/flyctl); flymigrate also
# looks in the parent folders, so that running it from a subfolder of the app (client/, src/) works, and says so.
MAX_UPWARD = 5


def find_config(app_dir: Path, config: Path | None = None, *, upward: bool = True) -> Path:
    if config is not None:
        err = _dangling(config)
        if err is not None:
            raise err
        return config
    if app_dir.is_file():
        return app_dir
    looked: list[Path] = []
    d = app_dir
    for level in range(MAX_UPWARD + 1 if upward else 1):
        for name in CONFIG_NAMES:
            p = d / name
            err = _dangling(p)
            if err is not None:
                raise err
            if p.exists():
                return p
        looked.append(d)
        if level == 0 and not d.exists():
            raise UserError(f"the app folder {app_dir} does not exist.", hint="Pass the folder that holds fly.toml.")
        if (d / ".git").exists():
            break  # the top of the repository: a fly.toml above it belongs to something else
        parent = d.resolve().parent
        if parent == d.resolve():
            break
        d = Path(os.path.relpath(parent)) if not app_dir.is_absolute() else parent
    where = ", ".join(str(x) for x in looked)
    here = "the current folder" if str(app_dir) == "." else str(app_dir)
    raise ConfigError(f"no fly.toml (or fly.json / fly.yaml) in {here}" + (f" or its parent folders (looked in "
                      f"{where})." if len(looked) > 1 else "."),
                      hint="Run flymigrate in the Fly app's folder, pass that folder, or use --config PATH. With no "
                      "fly.toml at all, a folder with a Dockerfile can be planned from it: pass --app NAME and "
                      "--gpu KIND.")


def app_root(app_dir: Path, config_path: str | Path | None = None) -> Path:
    """The folder apply works in (state, backups, rewrites): APP_DIR, or the parent folder its fly.toml was found
    in when run from a subfolder (as ``load_inputs`` reads it)."""
    if not app_dir.is_dir():
        return app_dir.parent
    if config_path:
        return app_dir
    try:
        cfg = find_config(app_dir)
    except (ConfigError, UserError):
        return app_dir
    return cfg.parent if cfg.parent.resolve() != app_dir.resolve() else app_dir


def _display(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base).replace(os.sep, "/")
    except ValueError:
        return str(path)


def load_app(app_dir: str | Path = ".", config_path: str | Path | None = None) -> FlyApp:
    """Read just the fly.toml of an app folder."""
    d = Path(app_dir)
    cfg = find_config(d, Path(config_path) if config_path else None)
    return load_fly_config(cfg, display=cfg.name if cfg.parent.resolve() == (d if d.is_dir() else d.parent).resolve()
                           else str(cfg))


# the whole URL, not just its start: it is written into code, .env files and YAML, so no whitespace, control
# characters, quotes or backslashes anywhere (a newline in --base-url injected lines into client code)
_BASE_URL_RE = re.compile(r"https?://[^\s/<>\"'`\\\x00-\x1f\x7f]+(?:/[^\s<>\"'`\\\x00-\x1f\x7f]*)?", re.I)


def _read_small_text(p: Path) -> str | None:
    try:
        if p.stat().st_size > MAX_SCRIPT_BYTES:
            return None
        data = p.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:4096]:
        return None
    return data.decode("utf-8", errors="replace")


def _scripts(app: FlyApp, root: Path, df: Dockerfile | None = None) -> dict[str, str]:
    """The app's own scripts, where driver shims and IPv6 binds hide: [[files]] sources, files the Dockerfile
    COPYs/ADDs, ``*.sh`` / ``*entrypoint*`` / ``start*``, and any small file with a ``#!`` line, two levels deep."""
    out: dict[str, str] = {}
    cands: list[Path] = []
    for f in app.files:
        if f.local_path:
            cands.append(root / f.local_path)
    if df is not None:
        for ins in df.instructions:
            if ins.keyword in ("COPY", "ADD") and "--from" not in ins.args:
                toks = [t for t in ins.args.replace("[", " ").replace("]", " ").replace(",", " ").split()
                        if not t.startswith("--")]
                cands += [root / t.strip("\"'") for t in toks[:-1] if t.strip("\"'") not in (".", "./")]
    for depth_glob in ("*", "*/*"):
        for p in sorted(root.glob(depth_glob)):
            if p.name.endswith(".sh") or "entrypoint" in p.name or p.name.startswith("start"):
                cands.append(p)
            elif p.is_file() and not p.suffix and p.stat().st_size <= MAX_SCRIPT_BYTES:
                try:
                    with open(p, "rb") as fh:
                        if fh.read(2) == b"#!":
                            cands.append(p)
                except OSError:
                    pass
    root_real = os.path.realpath(root)
    for p in cands:
        try:
            real = os.path.realpath(p)
        except OSError:
            continue
        if not real.startswith(root_real + os.sep) or not os.path.isfile(real):
            continue
        rel = _display(p, root)
        if rel in out or any(part in {".git", "node_modules", ".venv", "venv", ".flymigrate"} for part in Path(rel).parts):
            continue
        if p.name in ("fly.toml", "Dockerfile") or p.suffix in (".md", ".toml", ".json", ".lock", ".txt"):
            continue
        text = _read_small_text(p)
        if text is not None:
            out[rel] = text
    return out


def _gpu_hints(root: Path) -> list[GpuSpec]:
    hints: list[GpuSpec] = []
    cands = [p for p in sorted(root.iterdir()) if p.is_file() and HINT_FILES_RE.match(p.name)] if root.is_dir() else []
    wf = root / ".github" / "workflows"
    if wf.is_dir():
        cands += sorted(p for p in wf.iterdir() if p.is_file())
    for p in cands:
        text = _read_small_text(p)
        if not text:
            continue
        for m in GPU_FLAG_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            where = f"{_display(p, root)}:{line}"
            if m.group(1):
                kind, _ = normalise_gpu_kind(m.group(1))
                if kind:
                    hints.append(GpuSpec(kind, 1, f"--vm-gpu-kind {m.group(1)}", where))
            elif m.group(2) and m.group(2).lower() in GPU_SIZE_PRESETS:
                hints.append(GpuSpec(GPU_SIZE_PRESETS[m.group(2).lower()][0], 1, f"--vm-size {m.group(2)}", where))
    return hints


_FLY_APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _host_app(url: str) -> str | None:
    """The Fly app a hostname names (``http://NAME.flycast:80/x`` -> NAME), or None."""
    host = re.sub(r"^[a-z]+://", "", url.lower()).split("/")[0].split(":")[0].rstrip(".")
    for suffix in (".fly.dev", ".flycast", ".internal"):
        if host.endswith(suffix):
            name = host[: -len(suffix)].rsplit(".", 1)[-1]
            return name if _FLY_APP_NAME_RE.match(name) else None
    return None


def _recorded_app_name(root: Path) -> str | None:
    import json

    try:
        data = json.loads((root / ".flymigrate" / "state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("app_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and _FLY_APP_NAME_RE.match(name) else None


def _derive_app_name(app: FlyApp, root: Path, pre_scan) -> tuple[FlyApp, Finding | None]:
    """fly.toml has no ``app`` and no --app was given: take the name from the app's own Fly URL or its folder,
    and say which (a missing name made the app's own ``NAME.flycast`` look like another app)."""
    from dataclasses import replace

    folder = root.resolve().name.lower()
    urls: dict[str, str] = {}
    for h in pre_scan.other_apps:
        n = _host_app(h.old)
        if n and n not in ("app", "appname", "your-app", "my-app"):
            urls.setdefault(n, f"{h.path}:{h.line}")
    name = origin = None
    if folder in urls:
        name, origin = folder, f"the folder name, which {urls[folder]} also uses as a Fly URL"
    elif len(urls) == 1:
        name, where = next(iter(urls.items()))
        origin = f"the only Fly URL in the app's files ({where})"
    elif _FLY_APP_NAME_RE.match(folder):
        name, origin = folder, "the folder name"
    if name is None:
        return app, None
    app = replace(app, app=name, findings=tuple(f for f in app.findings if f.code != "no-app-name"))
    return app, Finding("info", "app-name-derived", f"no `app` in fly.toml: the name {name} is taken from {origin}; "
                        "pass --app NAME if the Fly app was called something else.", app.config_path)


def _app_from_dockerfile(d: Path, app_name: str | None) -> tuple[FlyApp, Finding]:
    """An app with no fly.toml (a Dockerfile and a README, run with `fly m run`): the FlyApp flyctl's defaults
    would give it, with every assumption stated in one finding."""
    from .parse.flytoml import normalise

    port = 8080  # flyctl's default internal_port
    try:
        text = (d / "Dockerfile").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    m = re.search(r"^\s*EXPOSE\s+(\d+)", text, re.I | re.M)
    if m:
        port = int(m.group(1))
    raw: dict[str, object] = {"build": {"dockerfile": "Dockerfile"},
                              "http_service": {"internal_port": port, "auto_stop_machines": "stop",
                                               "auto_start_machines": True, "min_machines_running": 0}}
    if app_name:
        raw["app"] = app_name
    app = normalise(raw, "Dockerfile", None)
    assumed = Finding("warning", "no-fly-toml", f"no fly.toml in {d}: planned from the Dockerfile with these "
                      f"assumptions: the server listens on port {port} ({'EXPOSE' if m else 'flyctl default'}), "
                      "no volume, scale to zero when idle, the GPU from --gpu or the README; "
                      "add a fly.toml (or pass --config) if any of that is wrong.", "Dockerfile")
    return app, assumed


def load_inputs(
    app_dir: str | Path = ".",
    *,
    config_path: str | Path | None = None,
    secrets_paths: list[str] | None = None,
    code_dirs: list[str] | None = None,
    gpu: str | None = None,
    app_name: str | None = None,
) -> PlanInputs:
    """Read everything the planner needs (reads only; writes nothing)."""
    d = Path(app_dir)
    findings: list[Finding] = []
    try:
        cfg: Path | None = find_config(d, Path(config_path) if config_path else None)
    except ConfigError:
        # no fly.toml anywhere: a folder with a Dockerfile is enough, with the assumptions stated
        if config_path or not d.is_dir() or not (d / "Dockerfile").is_file():
            raise
        cfg = None
    if cfg is None:
        root = d
        cfg_dir = d
        shown_cfg = "Dockerfile"
        app, assumed = _app_from_dockerfile(d, app_name)
        findings.append(assumed)
        inputs: list[tuple[str, str]] = []
    else:
        found_above = not config_path and d.is_dir() and cfg.parent.resolve() != d.resolve()
        root = cfg.parent if found_above else (d if d.is_dir() else cfg.parent)
        shown_cfg = _display(cfg, root)
        app = load_fly_config(cfg, display=shown_cfg)
        if found_above:
            findings.append(Finding("info", "config-found-above", f"no fly.toml in {d}: using {cfg}, found in a "
                                    "parent folder (pass the app folder or --config PATH to choose another).", None))
        inputs = [("fly.toml", shown_cfg)]
        cfg_dir = cfg.parent
    if app_name:
        from dataclasses import replace

        app = replace(app, app=app_name, findings=tuple(f for f in app.findings if f.code != "no-app-name"))
    # Dockerfile
    df = None
    if app.build.dockerfile and not app.build.dockerfile.startswith(("http://", "https://")):
        dpath = cfg_dir / app.build.dockerfile
        df = load_dockerfile(dpath, _display(dpath, root))
    elif not app.build.image and not (app.build.dockerfile or "").startswith("http"):
        dpath = cfg_dir / "Dockerfile"
        if dpath.is_file():
            df = load_dockerfile(dpath, _display(dpath, root))
        else:
            findings.append(Finding("warning", "no-dockerfile", "no Dockerfile next to fly.toml and no [build] "
                                    "image: flyctl would have used buildpacks or a builder. The targets need a "
                                    "Dockerfile or an image.", shown_cfg, "dockerfile"))
    if df is not None:
        inputs.append(("dockerfile", df.path))
        ignore = _dockerignore(cfg_dir, dpath)
        if ignore:
            from dataclasses import replace

            app = replace(app, build=replace(app.build, ignore=ignore))
    elif app.build.image:
        inputs.append(("image", app.build.image))
    # a registry image built by Cog (cog.yaml beside fly.toml, no Dockerfile): Cog's own command is known
    image_builder = "cog" if df is None and app.build.image and (cfg_dir / "cog.yaml").is_file() else None

    # secrets
    export: SecretsExport | None = None
    if secrets_paths:
        from .parse.secrets import load_secrets, merge_exports  # only with --secrets: start-up time

        image_env = env_names(df) if df else []
        exports = [load_secrets(Path(p), env_names=app.env_map.keys(), image_env_names=image_env, display=p)
                   for p in secrets_paths]
        export = merge_exports(exports)
        for p in secrets_paths:
            inputs.append(("secrets", p))

    # code scan: the code folders, plus fly.toml ([env]) itself
    roots: list[tuple[Path, str]] = []
    if code_dirs:
        for c in code_dirs:
            cp = Path(c)
            if not cp.exists():
                raise UserError(f"--code {c}: no such file or folder.")
            label = _display(cp, root)
            roots.append((cp, "" if label == "." else label))
            inputs.append(("code", c))
        if cfg is not None:
            roots.append((cfg, ""))
    else:
        roots.append((root, ""))
        inputs.append(("code", _display(root, Path.cwd()) if root != Path(".") else "."))
    if app.app is None:
        recorded = _recorded_app_name(root)
        if recorded:  # a previous apply derived it (before it rewrote the URLs it was derived from): keep it
            from dataclasses import replace as _replace

            app = _replace(app, app=recorded, findings=tuple(f for f in app.findings if f.code != "no-app-name"))
            findings.append(Finding("info", "app-name-derived", f"no `app` in fly.toml: the name {recorded} is the one "
                                    "a previous apply derived (kept in .flymigrate/state.json); pass --app NAME to "
                                    "change it.", app.config_path))
        else:
            # apply's backups hold the files as they were before their Fly URLs were rewritten: the same name again
            backup = root / ".flymigrate" / "backup"
            pre_roots = roots + [(backup, ".flymigrate/backup")] if backup.is_dir() else roots
            app, named = _derive_app_name(app, root, scan_paths(pre_roots, None, exclude=secrets_paths or ()))
            if named is not None:
                findings.append(named)
    scan = scan_paths(roots, app.app, exclude=secrets_paths or ())
    gpu_override = None
    if gpu:
        try:
            gpu_override = parse_gpu_arg(gpu)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return PlanInputs(app=app, dockerfile=df, secrets=export, scan=scan, scripts=_scripts(app, root, df),
                      gpu_override=gpu_override, gpu_hints=tuple(_gpu_hints(root)),
                      image_env_names=tuple(env_names(df)) if df else (), inputs=tuple(inputs),
                      findings=tuple(findings), image_builder=image_builder)


def plan(
    app_dir: str | Path = ".",
    target: str | None = None,
    *,
    config_path: str | Path | None = None,
    secrets_paths: list[str] | None = None,
    code_dirs: list[str] | None = None,
    gpu: str | None = None,
    base_url: str | None = None,
    app_name: str | None = None,
    options: DeployOptions | None = None,
) -> Plan:
    """The plan and its Deployment. ``options`` (volume id, bucket, image, region, --weights-from...) are the
    same ones ``apply`` takes, so the plan shows exactly what apply will write."""
    from dataclasses import replace

    target = target or default_target()
    check_target(target)
    inp = load_inputs(app_dir, config_path=config_path, secrets_paths=secrets_paths, code_dirs=code_dirs, gpu=gpu,
                      app_name=app_name)
    opts = options or DeployOptions()
    if base_url is not None:
        opts = replace(opts, base_url=base_url)
    if opts.base_url is not None and not _BASE_URL_RE.fullmatch(opts.base_url):
        raise UserError(f"--base-url {opts.base_url!r} is not an http(s) URL.", hint="Example: https://api.example.com")
    p = build_plan(inp, target, options=opts)
    return attach_comparison(p, inp)


def _dockerignore(context: Path, dockerfile: Path) -> tuple[str, ...]:
    """The build context's ignore patterns: ``<Dockerfile>.dockerignore`` beside the Dockerfile (BuildKit) or the
    context's ``.dockerignore`` (docs.docker.com/build/building/context/#dockerignore-files)."""
    for p in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        return tuple(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    return ()


def default_target() -> str:
    """The first registered target (what ``plan`` / ``apply`` use when none is named)."""
    from .targets import names

    return names()[0]


def check_target(target: str) -> None:
    from .targets import is_target, names

    if not is_target(target):
        raise UserError(f"unknown target {target!r}; targets are {', '.join(names())}.")


def attach_comparison(p: Plan, inp: PlanInputs, plans: dict[str, Plan] | None = None) -> Plan:
    """Add the cost and cold-start comparison (issue 7) to a plan: the Deployments the planner decides for every
    target (``p`` and ``plans`` are reused), priced as planned; skipped when it cannot apply (no GPU)."""
    from dataclasses import replace

    from .compare import compare_plans
    from .planner import resolve_gpu

    if resolve_gpu(inp)[0] is None:
        return p
    have = dict(plans or {})
    if p.deployment is not None:
        have.setdefault(p.target, p)
    try:
        c = compare_plans(inp, None, plans=have)
    except UserError as exc:
        return replace(p, findings=p.findings + (Finding("info", "compare-skipped",
                                                         f"no cost comparison: {exc}", None),))
    return replace(p, comparison=c)


# ---- apply (flymigrate.apply holds the engine; imported lazily so `plan` stays light) ----------------------


def _apply_setup(app_dir: str | Path, target: str, options, *, config_path=None, secrets_paths=None, code_dirs=None,
                 gpu=None, app_name=None):
    check_target(target)
    from .apply import pristine_inputs

    if options.base_url is not None and not _BASE_URL_RE.fullmatch(options.base_url):
        raise UserError(f"--base-url {options.base_url!r} is not an http(s) URL.", hint="Example: https://api.example.com")
    inp = load_inputs(app_dir, config_path=config_path, secrets_paths=secrets_paths, code_dirs=code_dirs, gpu=gpu,
                      app_name=app_name)
    d = Path(app_dir)
    root = app_root(d, config_path)
    inp = pristine_inputs(inp, root)
    dopts = options.deploy_options()
    if dopts.access is None:
        # who may call the endpoint was decided on the first apply (from the clients' Fly URLs, which that run
        # rewrote): keep it, or a second run would decide again from the rewritten clients
        from dataclasses import replace as _r

        from .apply.state import read_state

        recorded = (((read_state(root) or {}).get("targets") or {}).get(target) or {}).get("access")
        if recorded in ("public", "private"):
            dopts = _r(dopts, access=recorded)
    if not _weights_will_be_on_volume(root, target, options):
        from dataclasses import replace as _replace

        dopts = _replace(dopts, weights_on_volume=False)
    return root, inp, build_plan(inp, target, options=dopts)


def _weights_will_be_on_volume(root: Path, target: str, options) -> bool:  # type: ignore[no-untyped-def]
    """--skip weights (or --only without it) keeps a baked weight download in the image, unless a previous run
    already put the weights on the volume: an image without its weights and an empty volume would not serve."""
    runs = "weights" not in options.skip and (not options.only or "weights" in options.only)
    if runs:
        return True
    from .apply.state import read_state

    st = read_state(root) or {}
    steps = ((st.get("targets") or {}).get(target) or {}).get("steps") or {}
    return (steps.get("weights") or {}).get("status") == "done"


def preview(app_dir: str | Path = ".", target: str | None = None, *, options=None, config_path=None, secrets_paths=None,
            code_dirs=None, gpu=None, app_name=None):
    """Per-step previews of ``apply`` (``list[flymigrate.apply.StepPreview]``): diffs, generated files, secret
    names, commands. Writes nothing. ``options`` is a ``flymigrate.apply.ApplyOptions`` (default: all steps)."""
    from .apply import ApplyOptions
    from .apply import preview as _preview

    target = target or default_target()
    options = options or ApplyOptions(target=target)
    root, inp, p = _apply_setup(app_dir, target, options, config_path=config_path, secrets_paths=secrets_paths,
                                code_dirs=code_dirs, gpu=gpu, app_name=app_name)
    return _preview(root, p, inp, options, code_dirs=code_dirs)


def apply(app_dir: str | Path = ".", target: str | None = None, *, options=None, reporter=None, confirm=None, stop=None,
          config_path=None, secrets_paths=None, code_dirs=None, gpu=None, app_name=None):
    """Carry the plan out (``flymigrate.apply.ApplyResult``). ``reporter(ApplyEvent)`` gets started / progress /
    finished / skipped / blocked / failed events; ``confirm(StepPreview) -> bool`` is asked before each step that
    changes something (None: yes to all); setting ``stop`` (threading.Event) stops with state saved."""
    from .apply import ApplyOptions, run_apply

    target = target or default_target()
    options = options or ApplyOptions(target=target)
    from .apply.state import ApplyLock

    root, inp, p = _apply_setup(app_dir, target, options, config_path=config_path, secrets_paths=secrets_paths,
                                code_dirs=code_dirs, gpu=gpu, app_name=app_name)
    with ApplyLock(root):
        return run_apply(root, p, inp, options, reporter, confirm=confirm, stop=stop, code_dirs=code_dirs)
