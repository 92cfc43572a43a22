"""A fake Modal server for the real ``modal`` client **1.6.4 only** (a private protocol), on 127.0.0.1.

Serves what ``App.lookup``, ``Image.*`` ("built" at once), ``Sandbox.create`` (V2, the 1.6.4 default),
``exec`` (`router`), ``filesystem`` (read/write/mkdir, under `FakeModal.root`), ``set_tags``,
``Sandbox.list``, ``wait``/``poll`` and ``terminate`` call; other RPCs answer UNIMPLEMENTED with their name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import grpclib.events
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from grpclib import GRPCError, Status
from grpclib.server import Server
from modal._utils.grpc_testing import patch_mock_servicer
from modal_proto import api_pb2
from modal_proto.api_grpc import ModalClientBase

from .router import CommandRouter, FakeSandbox, env_of, unary

GENERIC = api_pb2.GenericResult


def fake_jwt(lifetime: float = 3600) -> str:
    """An unsigned JWT with only an ``exp`` claim: the client reads the expiry and verifies nothing."""
    claims = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time() + lifetime)}).encode()).decode()
    return f"e30.{claims.rstrip('=')}.fake"  # "e30" is "{}" in base64


class FakeModal:
    """The server, run by its own event loop in a thread, and its state (`calls`, `apps`, `sandboxes`)."""

    def __init__(self, root: Path, *, token_id: str = "ak-test", token_secret: str = "as-test") -> None:
        self.root, self.token_id, self.token_secret = root, token_id, token_secret
        self.jwt = fake_jwt()  # for the command router
        self.calls: list[tuple[str, Message]] = []  # (RPC name, request), in order
        self.apps: dict[str, str] = {}  # name -> app id
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.break_output_at: bytes | None = None
        """When set, reading an exec's stdout fails once this text is in it, with a status the client does
        not retry (PERMISSION_DENIED): a broken stream, as the client meets it."""
        self.port, self.url = 0, ""
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def env(self) -> dict[str, str]:
        """Environment that points the modal client here (``MODAL_CONFIG_PATH`` counts at import only)."""
        return {
            "MODAL_SERVER_URL": self.url,
            "MODAL_TOKEN_ID": self.token_id,
            "MODAL_TOKEN_SECRET": self.token_secret,
            "MODAL_SANDBOX_V2": "1",  # the fake speaks the V2 sandbox RPCs only
            "MODAL_CONFIG_PATH": str(self.root / "no-modal.toml"),
        }

    def requests(self, method: str) -> list[Any]:
        """The requests received for `method` (e.g. ``"SandboxCreateV2"``), in order."""
        return [request for name, request in self.calls if name == method]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self._ids):04d}"  # not 22 characters: the client sees a V2 sandbox

    def start(self) -> None:
        """Serve from a thread; connections queue on the socket, bound here, until the loop accepts them."""
        sock = socket.create_server(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(sock),), name="modal-fake")
        self._thread.start()

    def stop(self) -> None:
        """Kill every exec'd process, close the server and join its thread."""
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    async def _authenticate(self, event: grpclib.events.RecvRequest) -> None:
        """Check the token (control plane) or the JWT this fake handed out (command router) of every call."""
        md, token = event.metadata, (self.token_id, self.token_secret)
        if event.method_name.startswith("/modal.client."):
            ok = (md.get("x-modal-token-id"), md.get("x-modal-token-secret")) == token
        else:
            ok = md.get("authorization") == f"Bearer {self.jwt}"
        if not ok:
            raise GRPCError(Status.UNAUTHENTICATED, "Invalid token or JWT")

    async def _serve(self, sock: socket.socket) -> None:
        server = Server([ControlPlane(self), CommandRouter(self)])
        grpclib.events.listen(server, grpclib.events.RecvRequest, self._authenticate)
        await server.start(sock=sock)
        await asyncio.to_thread(self._stop.wait)
        finish = [sb.finish(GENERIC.GENERIC_STATUS_TERMINATED) for sb in self.sandboxes.values()]
        await asyncio.gather(*finish)
        server.close()
        await server.wait_closed()


@patch_mock_servicer
class ControlPlane(ModalClientBase):
    """The ``modal.client.ModalClient`` RPCs the sandbox calls need; the others answer UNIMPLEMENTED."""

    def __init__(self, fake: FakeModal) -> None:
        self.fake = fake

    def sandbox(self, sandbox_id: str) -> FakeSandbox:
        if sandbox_id not in self.fake.sandboxes:
            raise GRPCError(Status.NOT_FOUND, f"Sandbox {sandbox_id} not found")
        return self.fake.sandboxes[sandbox_id]

    @unary
    async def AuthTokenGet(self, req: Any) -> api_pb2.AuthTokenGetResponse:
        return api_pb2.AuthTokenGetResponse(token=fake_jwt())

    @unary
    async def AppGetOrCreate(self, req: Any) -> api_pb2.AppGetOrCreateResponse:
        if req.app_name not in self.fake.apps:
            if req.object_creation_type != api_pb2.OBJECT_CREATION_TYPE_CREATE_IF_MISSING:
                raise GRPCError(Status.NOT_FOUND, f"App '{req.app_name}' not found")
            self.fake.apps[req.app_name] = self.fake.new_id("ap")
        return api_pb2.AppGetOrCreateResponse(app_id=self.fake.apps[req.app_name])

    @unary
    async def EnvironmentGetOrCreate(self, req: Any) -> api_pb2.EnvironmentGetOrCreateResponse:
        settings = api_pb2.EnvironmentSettings(image_builder_version="2025.06")  # images ask for it
        metadata = api_pb2.EnvironmentMetadata(name=req.deployment_name or "main", settings=settings)
        return api_pb2.EnvironmentGetOrCreateResponse(environment_id="en-fake", metadata=metadata)

    @unary
    async def ImageGetOrCreate(self, req: Any) -> api_pb2.ImageGetOrCreateResponse:
        # Already "built": the client skips ImageJoinStreaming (the build log stream).
        result = GENERIC(status=GENERIC.GENERIC_STATUS_SUCCESS)
        return api_pb2.ImageGetOrCreateResponse(image_id=self.fake.new_id("im"), result=result)

    @unary
    async def SandboxCreateV2(self, req: Any) -> api_pb2.SandboxCreateV2Response:
        created_at = max([time.time(), *(sb.created_at + 1e-3 for sb in self.fake.sandboxes.values())])
        sb = FakeSandbox(
            sandbox_id=self.fake.new_id("sb"),
            task_id=self.fake.new_id("ta"),
            app_id=req.app_id,
            definition=req.definition,
            env=env_of(req.secret_sources),
            tags={tag.tag_name: tag.tag_value for tag in req.tags},
            created_at=created_at,  # unique: Sandbox.list pages by it
        )
        self.fake.sandboxes[sb.sandbox_id] = sb
        if timeout := req.definition.timeout_secs:  # the sandbox's lifetime: then it ends as timed out
            status = GENERIC.GENERIC_STATUS_TIMEOUT
            asyncio.get_running_loop().call_later(timeout, lambda: asyncio.ensure_future(sb.finish(status)))
        return api_pb2.SandboxCreateV2Response(
            sandbox_id=sb.sandbox_id,
            task_id=sb.task_id,
            metadata=api_pb2.SandboxHandleMetadata(app_id=sb.app_id),
            # The command router is this server, over plain HTTP/2: the client allows it on localhost.
            command_router_access=api_pb2.CommandRouterAccess(url=self.fake.url, jwt=self.fake.jwt),
        )

    @unary
    async def SandboxWaitV2(self, req: Any) -> api_pb2.SandboxWaitResponse:
        sb = self.sandbox(req.sandbox_id)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(sb.finished.wait(), req.timeout)
        metadata = api_pb2.SandboxHandleMetadata(app_id=sb.app_id)
        return api_pb2.SandboxWaitResponse(result=sb.result, metadata=metadata)

    @unary
    async def SandboxTerminateV2(self, req: Any) -> api_pb2.SandboxTerminateResponse:
        sb = self.sandbox(req.sandbox_id)
        existing = sb.result
        await sb.finish(GENERIC.GENERIC_STATUS_TERMINATED)
        return api_pb2.SandboxTerminateResponse(existing_result=existing)

    @unary
    async def SandboxTagsSetV2(self, req: Any) -> empty_pb2.Empty:
        self.sandbox(req.sandbox_id).tags = {tag.tag_name: tag.tag_value for tag in req.tags}
        return empty_pb2.Empty()

    @unary
    async def SandboxListV2(self, req: Any) -> api_pb2.SandboxListResponse:
        # The client asks again with `before_timestamp` = the last `created_at` until a page is empty.
        infos = [
            api_pb2.SandboxInfo(
                id=sb.sandbox_id,
                app_id=sb.app_id,
                created_at=sb.created_at,
                tags=[api_pb2.SandboxTag(tag_name=k, tag_value=v) for k, v in sb.tags.items()],
                task_info=api_pb2.TaskInfo(id=sb.task_id, sandbox_id=sb.sandbox_id, result=sb.result),
                metadata=api_pb2.SandboxHandleMetadata(app_id=sb.app_id),
            )
            for sb in sorted(self.fake.sandboxes.values(), key=lambda sb: -sb.created_at)
            if (not req.app_id or sb.app_id == req.app_id)
            and (req.include_finished or sb.result is None)
            and all(sb.tags.get(tag.tag_name) == tag.tag_value for tag in req.tags)
            and (not req.before_timestamp or sb.created_at < req.before_timestamp)
        ]
        return api_pb2.SandboxListResponse(sandboxes=infos)


@contextlib.contextmanager
def fake_modal(root: Path) -> Iterator[FakeModal]:
    """Run a `FakeModal`, with ``os.environ`` pointing this process's modal client at it, for the block."""
    import modal
    from modal.client import _Client

    fake = FakeModal(root)
    fake.start()
    _Client._set_env_client(None)  # else a client cached for another server is reused
    try:
        with mock.patch.dict(os.environ, fake.env):
            yield fake
    finally:
        if _Client._client_from_env is not None:
            modal.Client.from_env().close()  # the cached singleton
        fake.stop()
