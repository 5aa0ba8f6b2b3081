"""Modal Volumes: ``modal-volume://NAME/PREFIX`` as a destination.

Uses the ``modal`` SDK's public volume API (research: destinations.md A.1):
``modal.Volume.from_name(NAME, create_if_missing=True, version=2)``, ``batch_upload(force=True)`` +
``put_file(local_path, remote)`` and ``listdir(prefix, recursive=True)``.

``put_file`` needs a seekable local file. A local source already is one and is handed over as it is
(``DestCaps.takes_local_file``; the engine hashes it first). Any other source file is first staged into a private file under
``STATE_DIR/modal-staging/`` (named after the destination path and source fingerprint, so a rerun continues
it; free space is checked before staging starts and the message says how much is needed), then uploaded,
verified and deleted. The engine drives this as a sequential ``CHUNKS`` upload. A VolumeFS v2
upload is content addressed in 8 MiB blocks: the SDK hashes the file, asks the server which blocks it
lacks (``VolumePutFiles2``), PUTs only those, then commits. So a run killed half-way through a file
re-sends at most the blocks that were in flight when it died; nothing needs to be remembered in the
journal besides the staging file itself.

After the commit the file is verified with ``listdir`` (size). The block sha256s are computed by the SDK
from the staged bytes and checked by the server on PUT; the staged file itself was hashed (sha256) by the
engine while it was written, against the source's hash where the source has one.

Credentials are the SDK's own: ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET`` or ``~/.modal.toml`` (``modal token
new``). ``modal`` is imported inside functions only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from ..errors import RemoteError, UserError
from ..paths import ensure_private_dir, state_dir
from .base import (
    AdapterOptions,
    DestCaps,
    DestEntry,
    Entry,
    MiB,
    ParsedURL,
    TransientError,
    UploadGone,
    WriteMode,
    join_key,
)

BLOCK_SIZE = 8 * MiB
AUTH_HINT = (
    "Log in with `modal token new`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET "
    "(MODAL_PROFILE picks a profile from ~/.modal.toml)."
)


def _where_modal_reads_credentials() -> str:
    """Where the SDK looks for a token (modal/config.py: MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, else the profile
    named by MODAL_PROFILE, else the active one, in ``MODAL_CONFIG_PATH`` or ``~/.modal.toml``)."""
    cfg = os.environ.get("MODAL_CONFIG_PATH") or os.path.expanduser("~/.modal.toml")
    state = "does not exist" if not os.path.exists(cfg) else "has no token for the active profile"
    prof = os.environ.get("MODAL_PROFILE")
    return (f"MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are not set, and {cfg} {state}"
            + (f" (profile {prof!r} from MODAL_PROFILE)" if prof else ""))


def _map_error(exc: BaseException, what: str) -> BaseException:
    """modal / grpclib / aiohttp errors -> our typed errors (messages carry no token)."""
    try:
        from modal import exception as mexc
    except Exception:  # pragma: no cover
        return exc
    name = type(exc).__name__
    msg = str(exc).splitlines()[0][:200] if str(exc) else name
    if isinstance(exc, mexc.AuthError):
        if "token missing" in msg.lower() or "was not found in" in msg:
            # the SDK found no token at all (modal/client.py: "Token missing" when neither MODAL_TOKEN_ID /
            # MODAL_TOKEN_SECRET nor the active profile of modal/config.py's user_config_path has one)
            return UserError(f"{what}: no Modal credentials found: {_where_modal_reads_credentials()}.",
                             hint=AUTH_HINT)
        return UserError(f"{what}: Modal rejected the credentials.", hint=AUTH_HINT)
    perm = getattr(mexc, "PermissionDeniedError", None)
    if perm is not None and isinstance(exc, perm):
        return UserError(f"{what}: permission denied by Modal ({msg}).", hint=AUTH_HINT)
    if isinstance(exc, mexc.NotFoundError):
        return UserError(f"{what}: not found on Modal ({msg}).")
    if isinstance(exc, mexc.InvalidError):
        return UserError(f"{what}: {msg}")
    if isinstance(exc, (mexc.ConnectionError, mexc.ServiceError, mexc.InternalFailure)):
        return TransientError(f"{what}: Modal did not answer ({name}: {msg}).")
    internal = getattr(mexc, "InternalError", None)
    exhausted = getattr(mexc, "ResourceExhaustedError", None)
    if (internal and isinstance(exc, internal)) or (exhausted and isinstance(exc, exhausted)):
        return TransientError(f"{what}: Modal answered {name} ({msg}).")
    if isinstance(exc, mexc.VolumeUploadTimeoutError):
        return TransientError(f"{what}: upload timed out on Modal's side.")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return TransientError(f"{what}: connection failed ({name}).")
    if isinstance(exc, mexc.Error):
        return RemoteError(f"{what}: Modal error ({name}: {msg}).")
    mod = type(exc).__module__ or ""
    if mod.startswith(("aiohttp", "grpclib")) or isinstance(exc, OSError):
        return TransientError(f"{what}: connection failed ({name}).")
    return exc


def _with_deadline(fn: Any, seconds: float, what: str) -> Any:
    """Run ``fn`` in a helper thread; give up after ``seconds``.

    The modal SDK (1.6.4) PUTs blocks with an aiohttp session that has no timeout, so a connection that dies
    silently would hang the transfer forever. On a deadline the attempt is abandoned (its thread is a daemon)
    and a TransientError makes the engine retry; the retry re-sends only the blocks Modal still lacks.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=run, name="fm-modal-put", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TransientError(f"{what}: the Modal upload made no progress for {seconds:.0f}s; retrying.", network=True)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def staging_plan(sizes: list[int], staging_dir: str, concurrency: int) -> tuple[int, int]:
    """(bytes the staging area needs at peak, bytes free there). Peak = the ``concurrency`` largest files."""
    need = sum(sorted(sizes, reverse=True)[: max(1, concurrency)])
    ensure_private_dir(Path(staging_dir))
    free = shutil.disk_usage(staging_dir).free
    return need, free


def check_staging_space(sizes: list[int], staging_dir: str, concurrency: int, *, margin: int = 64 * MiB) -> None:
    """Raise a UserError saying how much is needed when the staging area cannot hold the in-flight files."""
    need, free = staging_plan(sizes, staging_dir, concurrency)
    if need + margin > free:
        raise UserError(
            f"not enough free disk to stage files for Modal: need {_gib(need + margin)} in {staging_dir}, "
            f"{_gib(free)} free.",
            hint="Free some space, point FLYMIGRATE_STATE_DIR at a bigger disk, or lower --concurrency "
            "(the staging area holds the files being uploaded at once).",
        )


def _gib(n: int) -> str:
    return f"{n / (1024**3):.2f} GiB" if n >= 1024**3 else f"{n / MiB:.1f} MiB"


class ModalVolumeUpload:
    """Stages one file, then uploads it with ``batch_upload``.

    Driven by the engine as a ``CHUNKS`` upload (sequential writes; ``committed()`` = bytes staged), so the
    staging file has a fixed name recorded in the journal: after a kill the rerun continues staging where
    it stopped (the engine re-reads the staged prefix from the source only to re-hash it), and a run killed
    during the Modal upload re-stages nothing and re-sends only the blocks Modal lacks. ``complete()``
    uploads, verifies and deletes the staging file, so disk use is bounded by the files in flight.
    """

    def __init__(self, dest: ModalVolumeDestination, entry: Entry, state: dict[str, Any] | None, sha256: str | None):
        self.dest = dest
        self.entry = entry
        self.sha256 = sha256
        self.state: dict[str, Any] = dict(state or {})
        self.remote = "/" + join_key(dest.prefix, entry.path)
        self._fh: Any = None

    # -- staging
    def _staging_path(self) -> str:
        key = f"{self.dest.name}|{self.remote}|{self.entry.fingerprint()}"
        return os.path.join(self.dest.staging_dir, hashlib.sha256(key.encode()).hexdigest()[:40] + ".part")

    def begin(self) -> dict[str, Any]:
        path = self._staging_path()
        check_staging_space([self.entry.size], self.dest.staging_dir, 1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        self.state = {"staging": path, "size": self.entry.size}
        return self.state

    def _path(self) -> str:
        path = self.state.get("staging")
        if not path or not os.path.exists(path):
            raise UploadGone(f"{self.remote}: staging file is gone")
        return str(path)

    def committed(self) -> int:
        return min(os.path.getsize(self._path()), self.entry.size)

    def write_chunk(self, offset: int, data: memoryview, final: bool) -> None:
        if self._fh is None:
            self._fh = open(self._path(), "r+b")  # noqa: SIM115
        fh = self._fh
        have = fh.seek(0, os.SEEK_END)
        if have < offset:
            raise UploadGone(f"{self.remote}: staging file is shorter than expected")
        if have != offset:
            fh.truncate(offset)
            fh.seek(offset)
        try:
            fh.write(data)
            fh.flush()
        except OSError as exc:
            left = self.entry.size - offset
            raise UserError(
                f"cannot write the staging file for {self.remote} ({exc.strerror}); {_gib(left)} more are needed in "
                f"{self.dest.staging_dir}.",
                hint="Free some disk, or point FLYMIGRATE_STATE_DIR at a bigger disk, and run the same command again.",
            ) from None

    def complete(self) -> DestEntry:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        path = self._path()
        if self.sha256:
            # the source told us its sha256 (HF LFS, Fly listing): check the staged copy before it goes out,
            # including a copy staged by an earlier, killed run
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(4 * MiB), b""):
                    h.update(chunk)
            if h.hexdigest() != self.sha256.lower():
                os.unlink(path)
                raise RemoteError(
                    f"{self.remote}: the staged copy does not match the source's sha256; it was removed. "
                    "Run the same command again to stage it anew."
                )
        de = self.put_file(path, self.sha256)
        try:
            os.unlink(path)
        except OSError:
            pass
        return de

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        path = self.state.get("staging")
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass

    # -- the upload itself (also the SPOOL-mode entry point)
    def put_file(self, local_path: str, sha256: str | None) -> DestEntry:
        size = os.path.getsize(local_path)
        if size != self.entry.size:
            raise RemoteError(f"{self.remote}: staged file has {size} bytes, source has {self.entry.size}.")
        vol = self.dest.volume()
        what = f"modal-volume://{self.dest.name}{self.remote}"

        def upload() -> None:
            ctx = self.dest.upload_context(vol)
            with ctx as batch:
                batch.put_file(local_path, self.remote)

        try:
            _with_deadline(upload, self.dest.put_deadline(size), what)
        except FileExistsError as exc:  # pragma: no cover - force=True
            raise RemoteError(f"{what}: {exc}") from None
        except TransientError:
            raise
        except Exception as exc:
            raise _map_error(exc, what) from None
        # verify the commit: the volume lists the file with the right size
        try:
            entries = vol.listdir(self.remote.lstrip("/"))
        except Exception as exc:
            raise _map_error(exc, f"{what}: verifying") from None
        files = [e for e in entries if int(getattr(e.type, "value", e.type)) == 1]
        if len(files) != 1 or int(files[0].size) != size:
            got = files[0].size if files else "nothing"
            raise RemoteError(f"{what}: after upload the volume lists {got}, expected {size} bytes.")
        return DestEntry(self.entry.path, size, sha256=sha256 or self.sha256)


class ModalVolumeDestination:
    # CHUNKS into a named staging file (see ModalVolumeUpload), not the engine's SPOOL mode: SPOOL stages to
    # an anonymous temp file that a kill leaves behind and a rerun cannot continue.
    caps = DestCaps(
        write_mode=WriteMode.CHUNKS,
        granularity=1,
        min_part_size=1 * MiB,
        max_part_size=64 * MiB,
        single_put_max=1 << 50,
        stores_sha256=False,
        takes_local_file=True,
    )

    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        self.url = url.raw
        self.name = url.root
        self.prefix = url.path
        self.opts = opts
        self._vol: Any = None
        self._lock = threading.Lock()
        self.version: int | None = None
        self.warnings: list[str] = []
        sd = opts.env.get("FLYMIGRATE_STATE_DIR")
        base = Path(sd) if sd else state_dir()
        self.staging_dir = str(base / "modal-staging")

    def describe(self) -> str:
        return f"modal-volume://{self.name}/{self.prefix}".rstrip("/")

    def volume(self, create: bool = True) -> Any:
        """The hydrated volume. ``create=False`` (check/list/stat) returns None when it does not exist yet, so a
        dry run or a listing never creates a volume; the first upload does."""
        with self._lock:
            if self._vol is None:
                self._vol = self._open_volume(create)
            return self._vol

    def _open_volume(self, create: bool) -> Any:
        import modal
        from modal import exception as mexc

        env_name = self.opts.env.get("MODAL_ENVIRONMENT") or None
        what = f"modal-volume://{self.name}"
        try:
            vol = modal.Volume.from_name(self.name, create_if_missing=create, version=2, environment_name=env_name)
            vol.hydrate()
            self.version = 2
        except mexc.NotFoundError:
            if create:
                raise UserError(f"{what}: Modal says the volume does not exist and could not be created.") from None
            return None
        except mexc.InvalidError as exc:
            if "version" not in str(exc).lower():
                raise _map_error(exc, what) from None
            # an existing v1 volume: use it as is (whole-file dedup instead of 8 MiB blocks)
            try:
                vol = modal.Volume.from_name(self.name, environment_name=env_name)
                vol.hydrate()
            except Exception as exc2:
                raise _map_error(exc2, what) from None
            self.version = 1
            self.warnings.append(
                f"{what} is a version-1 volume: a resumed upload re-sends whole files, not just missing 8 MiB blocks."
            )
        except Exception as exc:
            raise _map_error(exc, what) from None
        return vol

    def check(self) -> None:
        """Credentials and reachability (a lookup; the volume itself is created by the first upload)."""
        self.volume(create=False)

    def list(self) -> dict[str, DestEntry]:
        vol = self.volume(create=False)
        if vol is None:
            return {}
        from modal import exception as mexc

        try:
            entries = vol.listdir(self.prefix or "/", recursive=True)
        except (mexc.NotFoundError, FileNotFoundError):
            return {}
        except Exception as exc:
            raise _map_error(exc, f"modal-volume://{self.name}/{self.prefix}: listing") from None
        out: dict[str, DestEntry] = {}
        plen = len(self.prefix) + 1 if self.prefix else 0
        for e in entries:
            if int(getattr(e.type, "value", e.type)) != 1:  # FILE
                continue
            path = e.path.lstrip("/")
            if self.prefix and path == self.prefix:
                rel = path.rsplit("/", 1)[-1]
            elif self.prefix and not path.startswith(self.prefix + "/"):
                continue
            else:
                rel = path[plen:]
            out[rel] = DestEntry(rel, int(e.size))
        return out

    def upload_context(self, vol: Any) -> Any:
        """``vol.batch_upload(force=True)``, but with fewer blocks in flight (v2 volumes).

        ``batch_upload`` PUTs up to 128 blocks (1 GiB) at once, so a kill half-way through a file leaves every
        block half-sent and a rerun re-sends nearly all of it (measured: 256 MiB killed at 50 % -> 256 MiB sent
        again). The same upload class with ``put_concurrency`` (default 8, FLYMIGRATE_MODAL_PUT_CONCURRENCY)
        bounds the re-send to that many 8 MiB blocks. Falls back to ``batch_upload`` if the SDK changes.
        """
        if self.version == 2:
            try:
                from modal.volume import VolumeUploadContextManager2

                conc = int(self.opts.env.get("FLYMIGRATE_MODAL_PUT_CONCURRENCY") or 8)
                return VolumeUploadContextManager2(vol.object_id, vol.client, force=True, put_concurrency=max(1, conc))
            except (ImportError, TypeError, AttributeError, ValueError):
                pass
        return vol.batch_upload(force=True)

    def put_deadline(self, size: int) -> float:
        """Seconds one batch upload may take: 5 min + 1 MiB/s (FLYMIGRATE_MODAL_PUT_TIMEOUT overrides)."""
        fixed = self.opts.env.get("FLYMIGRATE_MODAL_PUT_TIMEOUT")
        if fixed:
            return float(fixed)
        return 300.0 + size / MiB

    def stat(self, path: str) -> DestEntry | None:
        from modal import exception as mexc

        remote = join_key(self.prefix, path)
        try:
            vol = self.volume(create=False)
            if vol is None:
                return None
            entries = vol.listdir(remote)
        except (mexc.NotFoundError, FileNotFoundError):
            return None
        except Exception as exc:
            raise _map_error(exc, f"modal-volume://{self.name}/{remote}") from None
        files = [e for e in entries if int(getattr(e.type, "value", e.type)) == 1]
        return DestEntry(path, int(files[0].size)) if len(files) == 1 else None

    def open_upload(self, entry: Entry, state: dict[str, Any] | None, sha256: str | None) -> ModalVolumeUpload:
        return ModalVolumeUpload(self, entry, state, sha256)

    def list_stale_uploads(self) -> list[dict[str, Any]]:
        return []

    def abort_stale(self, state: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def destination(url: ParsedURL, opts: AdapterOptions) -> ModalVolumeDestination:
    return ModalVolumeDestination(url, opts)


def create_secret(name: str, values: dict[str, str], *, overwrite: bool = True, environment: str | None = None) -> None:
    """Create (or replace) a named Modal secret through the SDK; for ``apply``'s secrets step.

    Values travel only in the gRPC request body (never argv, logs or exceptions). ``overwrite=True`` replaces
    an existing secret's values, like ``modal secret create --force`` (the public
    ``modal.Secret.objects.create(..., allow_existing=True)`` would keep stale values).
    """
    import modal
    from modal import exception as mexc

    what = f"Modal secret {name!r}"
    try:
        if overwrite:
            modal.Secret._create_deployed(name, values, environment_name=environment, overwrite=True)
        else:
            modal.Secret.objects.create(name, values, environment_name=environment)
    except mexc.AlreadyExistsError:
        raise UserError(f"{what} already exists.", hint="Re-run with overwrite, or pick another name.") from None
    except Exception as exc:
        raise _map_error(exc, what) from None
