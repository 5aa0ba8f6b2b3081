"""A loopback fake of Modal's control plane, for tests and benchmarks.

Built on the gRPC servicer base that the ``modal`` wheel ships (``modal_proto.api_grpc.ModalClientBase``)
plus an aiohttp server for block PUT/GET, so the *real* ``modal`` client code path is exercised.
Point the client at it with ``MODAL_SERVER_URL`` (see :meth:`ModalFake.env`).

Implements (VolumeFS v2 only, see shared/research/destinations.md A.3):
``VolumeGetOrCreate``, ``VolumePutFiles2``, ``VolumeListFiles2``, ``VolumeGetFile2``, ``VolumeRemoveFile2``,
``VolumeList``, ``VolumeDelete``, ``SecretGetOrCreate``, ``SecretList``, ``ClientHello``.
Anything else answers UNIMPLEMENTED (loudly), thanks to ``patch_mock_servicer``.

Blocks are content addressed (sha256 of the block with trailing zeros stripped, as the client sends them)
and survive across client processes for the lifetime of the fake, like the real server's block store.
``bytes_received`` counts every block byte PUT to the fake as it arrives (a PUT cut off by a killed client
counts too), which is what resume measurements read.
Secret values are kept in memory only and never logged.

Run standalone (for benchmarks)::

    python -m tests.servers.modal_fake            # prints MODAL_SERVER_URL=... and waits
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

BLOCK_SIZE = 8 * 1024 * 1024


@dataclass
class _File:
    size: int
    mode: int
    mtime: int
    blocks: list[bytes]  # sha256 digests


@dataclass
class _Volume:
    volume_id: str
    name: str
    environment: str
    version: int
    created_at: float
    files: dict[str, _File] = field(default_factory=dict)


@dataclass
class _Secret:
    secret_id: str
    name: str
    environment: str
    values: dict[str, str]

    def __repr__(self) -> str:  # never print values
        return f"_Secret({self.secret_id!r}, {self.name!r}, keys={sorted(self.values)})"


def _norm(path: str) -> str:
    parts = [p for p in path.split("/") if p and p != "."]
    return "/".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModalFake:
    """In-memory fake. ``start()`` runs gRPC + HTTP on a private event loop in a daemon thread."""

    def __init__(self, *, token_id: str = "ak-test", token_secret: str = "as-test") -> None:
        self.token_id = token_id
        self.token_secret = token_secret
        self.volumes: dict[tuple[str, str], _Volume] = {}
        self.secrets: dict[tuple[str, str], _Secret] = {}
        self.blocks: dict[bytes, bytes] = {}
        self.calls: list[str] = []
        self.bytes_received = 0  # block bytes PUT (accepted or not)
        self.block_puts = 0
        self.bytes_served = 0
        # fault injection: the next N block PUTs fail with 503 (the client retries them)
        self.fail_next_puts = 0
        self.put_delay = 0.0  # seconds before reading each block PUT (slows uploads for kill tests)
        self.serialize_puts = False  # handle block PUTs one at a time (deterministic kill points)
        self._put_lock: asyncio.Lock | None = None
        self.bytes_stored = 0  # bytes of distinct blocks stored
        self.put_shas: list[str] = []  # every complete block PUT, in order
        # optional override of the base URL used in put/get URLs (e.g. a faulty proxy in front)
        self.block_base_url: str | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.grpc_port = 0
        self.http_port = 0
        self._stop_evt: asyncio.Event | None = None

    # ------------------------------------------------------------------ public helpers
    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self, home: str | None = None) -> dict[str, str]:
        """Environment for a client process (dummy credentials; HOME isolated from a real ~/.modal.toml)."""
        env = {
            "MODAL_SERVER_URL": self.server_url,
            "MODAL_TOKEN_ID": self.token_id,
            "MODAL_TOKEN_SECRET": self.token_secret,
            "MODAL_DISABLE_API_PROXY": "1",
        }
        if home is not None:
            env["HOME"] = home
            env["MODAL_CONFIG_PATH"] = os.path.join(home, ".modal.toml")
        return env

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.bytes_received = 0
            self.bytes_stored = 0
            self.put_shas = []
            self.block_puts = 0
            self.bytes_served = 0

    def read_file(self, volume: str, path: str, environment: str = "main") -> bytes:
        vol = self.volumes[(environment, volume)]
        f = vol.files[_norm(path)]
        return self._assemble(f)

    def list_files(self, volume: str, environment: str = "main") -> dict[str, int]:
        vol = self.volumes[(environment, volume)]
        return {p: f.size for p, f in sorted(vol.files.items())}

    def secret_values(self, name: str, environment: str = "main") -> dict[str, str]:
        return dict(self.secrets[(environment, name)].values)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ModalFake:
        ready = threading.Event()
        err: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # pragma: no cover - surfaced to start()
                err.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="modal-fake", daemon=True)
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("modal fake did not start")
        if err:
            raise err[0]
        return self

    def stop(self) -> None:
        if self._loop and self._stop_evt:
            self._loop.call_soon_threadsafe(self._stop_evt.set)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> ModalFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web
        from grpclib.server import Server

        self._stop_evt = asyncio.Event()
        servicer = _make_servicer(self)
        grpc_server = Server([servicer])
        await grpc_server.start("127.0.0.1", 0)
        self.grpc_port = grpc_server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        app = web.Application(client_max_size=BLOCK_SIZE + 1024)
        app.router.add_put("/block/{sha}", self._http_put)
        app.router.add_get("/block/{sha}", self._http_get)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        await self._stop_evt.wait()
        grpc_server.close()
        await grpc_server.wait_closed()
        await runner.cleanup()

    # ------------------------------------------------------------------ HTTP blocks
    def _block_url(self, sha: bytes) -> str:
        return f"{self.block_base_url or self.http_url}/block/{sha.hex()}"

    async def _http_put(self, request: Any) -> Any:
        if self.serialize_puts:
            if self._put_lock is None:
                self._put_lock = asyncio.Lock()
            async with self._put_lock:
                return await self._http_put_one(request)
        return await self._http_put_one(request)

    async def _http_put_one(self, request: Any) -> Any:
        from aiohttp import web

        sha_hex = request.match_info["sha"]
        if self.put_delay:
            await asyncio.sleep(self.put_delay)
        buf = bytearray()
        async for chunk in request.content.iter_chunked(256 * 1024):
            buf += chunk
            with self._lock:
                self.bytes_received += len(chunk)  # counted as it arrives: a cut-off PUT counts too
        body = bytes(buf)
        with self._lock:
            self.block_puts += 1
            if self.fail_next_puts > 0:
                self.fail_next_puts -= 1
                return web.Response(status=503, text="injected failure")
        if hashlib.sha256(body).hexdigest() != sha_hex:
            return web.Response(status=400, text="block digest mismatch")
        with self._lock:
            self.put_shas.append(sha_hex)
            if bytes.fromhex(sha_hex) not in self.blocks:
                self.bytes_stored += len(body)
            self.blocks[bytes.fromhex(sha_hex)] = body
        return web.Response(status=200, body=b"put-ok:" + sha_hex.encode())

    async def _http_get(self, request: Any) -> Any:
        from aiohttp import web

        sha = bytes.fromhex(request.match_info["sha"])
        data = self.blocks.get(sha)
        if data is None:
            return web.Response(status=404, text="no such block")
        with self._lock:
            self.bytes_served += len(data)
        return web.Response(status=200, body=data)

    def _assemble(self, f: _File) -> bytes:
        out = bytearray()
        for i, sha in enumerate(f.blocks):
            want = min(BLOCK_SIZE, f.size - i * BLOCK_SIZE)
            out += self.blocks[sha].ljust(want, b"\0")
        return bytes(out)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self._ids):06d}"


def _make_servicer(fake: ModalFake) -> Any:
    from google.protobuf.empty_pb2 import Empty
    from grpclib import GRPCError, Status
    from modal._utils.grpc_testing import patch_mock_servicer
    from modal_proto import api_grpc, api_pb2

    def check_auth(stream: Any) -> None:
        md = stream.metadata or {}
        if md.get("x-modal-token-id") != fake.token_id or md.get("x-modal-token-secret") != fake.token_secret:
            raise GRPCError(Status.UNAUTHENTICATED, "bad token (fake)")

    def record(name: str) -> None:
        with fake._lock:
            fake.calls.append(name)

    def env_name(e: str) -> str:
        return e or "main"

    @patch_mock_servicer
    class FakeServicer(api_grpc.ModalClientBase):  # type: ignore[misc]
        async def ClientHello(self, stream: Any) -> None:
            check_auth(stream)
            await stream.recv_message()
            record("ClientHello")
            await stream.send_message(api_pb2.ClientHelloResponse())

        async def VolumeGetOrCreate(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumeGetOrCreate")
            key = (env_name(req.environment_name), req.deployment_name)
            ct = req.object_creation_type
            vol = fake.volumes.get(key)
            if vol is not None and ct == api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS:
                raise GRPCError(Status.ALREADY_EXISTS, f"Volume '{req.deployment_name}' already exists")
            if vol is None:
                if ct not in (
                    api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING,
                    api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS,
                ):
                    raise GRPCError(Status.NOT_FOUND, f"Volume '{req.deployment_name}' not found")
                if req.version == api_pb2.VOLUME_FS_VERSION_V1:
                    raise GRPCError(Status.INVALID_ARGUMENT, "fake supports VolumeFS v2 only")
                vol = _Volume(fake._new_id("vo"), req.deployment_name, key[0], 2, time.time())
                fake.volumes[key] = vol
            md = api_pb2.VolumeMetadata(version=api_pb2.VOLUME_FS_VERSION_V2, name=vol.name)
            await stream.send_message(
                api_pb2.VolumeGetOrCreateResponse(
                    volume_id=vol.volume_id, version=api_pb2.VOLUME_FS_VERSION_V2, metadata=md
                )
            )

        async def VolumeList(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumeList")
            items = [
                api_pb2.VolumeListItem(
                    label=v.name,
                    volume_id=v.volume_id,
                    created_at=v.created_at,
                    metadata=api_pb2.VolumeMetadata(version=api_pb2.VOLUME_FS_VERSION_V2, name=v.name),
                )
                for (e, _), v in fake.volumes.items()
                if e == env_name(req.environment_name)
            ]
            await stream.send_message(api_pb2.VolumeListResponse(items=items))

        async def VolumeDelete(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumeDelete")
            for key, v in list(fake.volumes.items()):
                if v.volume_id == req.volume_id:
                    del fake.volumes[key]
                    break
            else:
                raise GRPCError(Status.NOT_FOUND, "no such volume")
            await stream.send_message(Empty())

        def _vol(self, volume_id: str) -> _Volume:
            for v in fake.volumes.values():
                if v.volume_id == volume_id:
                    return v
            raise GRPCError(Status.NOT_FOUND, f"Volume {volume_id} not found")

        async def VolumePutFiles2(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumePutFiles2")
            vol = self._vol(req.volume_id)
            missing = []
            for fi, f in enumerate(req.files):
                for bi, b in enumerate(f.blocks):
                    if b.contents_sha256 not in fake.blocks:
                        missing.append(
                            api_pb2.VolumePutFiles2Response.MissingBlock(
                                file_index=fi, block_index=bi, put_url=fake._block_url(b.contents_sha256)
                            )
                        )
            if missing:
                await stream.send_message(api_pb2.VolumePutFiles2Response(missing_blocks=missing))
                return
            for f in req.files:
                path = _norm(f.path)
                if req.disallow_overwrite_existing_files and path in vol.files:
                    raise GRPCError(Status.ALREADY_EXISTS, f"{path}: already exists")
                nblocks = -(-f.size // BLOCK_SIZE)
                if len(f.blocks) != nblocks:
                    raise GRPCError(Status.INVALID_ARGUMENT, f"{path}: {len(f.blocks)} blocks for {f.size} B")
                # a directory of the same name, or a file where a directory is needed, is an error
                if any(p.startswith(path + "/") for p in vol.files):
                    raise GRPCError(Status.FAILED_PRECONDITION, f"{path} is a directory")
                vol.files[path] = _File(
                    size=f.size, mode=f.mode, mtime=int(time.time()), blocks=[b.contents_sha256 for b in f.blocks]
                )
            await stream.send_message(api_pb2.VolumePutFiles2Response())

        async def VolumeListFiles2(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumeListFiles2")
            vol = self._vol(req.volume_id)
            prefix = _norm(req.path)
            entries: list[Any] = []
            if prefix in vol.files:
                f = vol.files[prefix]
                entries.append(api_pb2.FileEntry(path=prefix, type=api_pb2.FileEntry.FILE, mtime=f.mtime, size=f.size))
            else:
                dirs: set[str] = set()
                found = False
                for p, f in sorted(vol.files.items()):
                    if prefix and not p.startswith(prefix + "/"):
                        continue
                    found = True
                    rel = p[len(prefix) + 1 :] if prefix else p
                    parts = rel.split("/")
                    # directories implied by the path
                    for depth in range(1, len(parts)):
                        if not req.recursive and depth > 1:
                            break
                        d = "/".join(parts[:depth])
                        full = f"{prefix}/{d}" if prefix else d
                        if full not in dirs:
                            dirs.add(full)
                            entries.append(api_pb2.FileEntry(path=full, type=api_pb2.FileEntry.DIRECTORY))
                    if req.recursive or len(parts) == 1:
                        entries.append(
                            api_pb2.FileEntry(path=p, type=api_pb2.FileEntry.FILE, mtime=f.mtime, size=f.size)
                        )
                if not found and prefix:
                    raise GRPCError(Status.NOT_FOUND, f"No such file or directory: {prefix}")
            for i in range(0, len(entries), 100):
                await stream.send_message(api_pb2.VolumeListFiles2Response(entries=entries[i : i + 100]))
            if not entries:
                await stream.send_message(api_pb2.VolumeListFiles2Response())

        async def VolumeGetFile2(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumeGetFile2")
            vol = self._vol(req.volume_id)
            f = vol.files.get(_norm(req.path))
            if f is None:
                raise GRPCError(Status.NOT_FOUND, f"No such file: {req.path}")
            start = req.start
            length = f.size - start if not req.len else min(req.len, f.size - start)
            first = start // BLOCK_SIZE
            last = -(-(start + length) // BLOCK_SIZE) if length else first
            urls = [fake._block_url(sha) for sha in f.blocks[first:last]]
            await stream.send_message(
                api_pb2.VolumeGetFile2Response(get_urls=urls, size=f.size, start=start, len=length)
            )

        async def VolumeRemoveFile2(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("VolumeRemoveFile2")
            vol = self._vol(req.volume_id)
            path = _norm(req.path)
            if path in vol.files:
                del vol.files[path]
            else:
                under = [p for p in vol.files if p.startswith(path + "/")]
                if not under:
                    raise GRPCError(Status.NOT_FOUND, f"No such file: {req.path}")
                if not req.recursive:
                    raise GRPCError(Status.INVALID_ARGUMENT, f"{path} is a directory")
                for p in under:
                    del vol.files[p]
            await stream.send_message(Empty())

        async def SecretGetOrCreate(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("SecretGetOrCreate")
            key = (env_name(req.environment_name), req.deployment_name)
            ct = req.object_creation_type
            sec = fake.secrets.get(key)
            values = dict(req.env_dict)
            if ct == api_pb2.OBJECT_CREATION_TYPE_CREATE_FAIL_IF_EXISTS:
                if sec is not None:
                    raise GRPCError(Status.ALREADY_EXISTS, f"Secret '{req.deployment_name}' already exists")
                sec = _Secret(fake._new_id("st"), req.deployment_name, key[0], values)
            elif ct == api_pb2.OBJECT_CREATION_TYPE_CREATE_OVERWRITE_IF_EXISTS:
                sec = _Secret(sec.secret_id if sec else fake._new_id("st"), req.deployment_name, key[0], values)
            elif ct == api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING:
                if sec is None:
                    sec = _Secret(fake._new_id("st"), req.deployment_name, key[0], values)
            elif ct == api_pb2.OBJECT_CREATION_TYPE_UNSPECIFIED:
                if sec is None:
                    raise GRPCError(Status.NOT_FOUND, f"Secret '{req.deployment_name}' not found")
                missing = [k for k in req.required_keys if k not in sec.values]
                if missing:
                    raise GRPCError(Status.NOT_FOUND, f"Secret is missing keys {missing}")
            else:
                raise GRPCError(Status.UNIMPLEMENTED, "ephemeral/anonymous secrets not in the fake")
            fake.secrets[key] = sec
            await stream.send_message(
                api_pb2.SecretGetOrCreateResponse(
                    secret_id=sec.secret_id,
                    metadata=api_pb2.SecretMetadata(
                        name=sec.name, environment_name=sec.environment, keys=sorted(sec.values)
                    ),
                )
            )

        async def SecretList(self, stream: Any) -> None:
            check_auth(stream)
            req = await stream.recv_message()
            record("SecretList")
            items = [
                api_pb2.SecretListItem(label=s.name, secret_id=s.secret_id)
                for (e, _), s in fake.secrets.items()
                if e == env_name(req.environment_name)
            ]
            await stream.send_message(api_pb2.SecretListResponse(items=items))

    return FakeServicer()


def main() -> None:  # pragma: no cover - manual/bench use
    fake = ModalFake().start()
    for k, v in fake.env().items():
        print(f"{k}={v}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
