"""Keeps one server process's WebSockets known to the rest of the system.

Every ``CONNECTION_REFRESH`` seconds one task per process refreshes the registrations of all
its agent sockets (``watcher.services.connections``) and re-joins all its sockets' groups
(the channel layer forgets a member after ``group_expiry``): one task for the process, not
one per socket, so that idle sockets cost nothing between passes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from watcher.services import connections

log = logging.getLogger(__name__)


class KeptSocket(Protocol):
    """What the keeper needs of a consumer."""

    channel_name: str
    agent: Any  # the agent (with ``pk``) an agent socket speaks for; None for other sockets
    is_open: bool  # accepted and not yet cleaned up

    def kept_groups(self) -> tuple[str, ...]: ...

    async def agent_replaced(self, event: Any) -> None: ...


class SocketKeeper:
    """The sockets of one event loop, refreshed by one task while any is open.

    A socket whose agent has a newer socket (here or in another process) is closed with 4002,
    in case the notice of the newer connection was lost. A socket that leaves while a refresh
    is under way is taken out again (registration and groups) once the refresh is done.
    """

    interval: float = connections.CONNECTION_REFRESH

    def __init__(self) -> None:
        self.sockets: dict[str, KeptSocket] = {}  # channel name → consumer, oldest first
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: KeptSocket) -> None:
        if not socket.is_open:
            return
        self.sockets[socket.channel_name] = socket
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
            self.task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        # Nothing here keeps a finished task (and through it a closed loop) alive; a newer
        # task, started while this one's callback waited its turn, stays.
        if self.task is task:
            self.task = None

    def discard(self, socket: KeptSocket) -> None:
        self.sockets.pop(socket.channel_name, None)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(self.interval)
            await self.refresh()

    async def refresh(self) -> None:
        """One pass: registrations first, then the groups; a failure of either is logged.

        Only open sockets are refreshed: one that ended without telling (it should not) is
        dropped here, so it can never be kept registered as connected.
        """
        for channel, socket in list(self.sockets.items()):
            if not socket.is_open:
                log.warning("dropping a closed socket the keeper still held")
                self.sockets.pop(channel, None)
        try:
            await self._refresh_registrations()
        except Exception:  # a Redis hiccup must not stop the group re-join or later passes
            log.exception("refreshing the agent sockets' registrations failed")
        try:
            await self._rejoin_groups()
        except Exception:
            log.exception("re-joining the sockets' groups failed")

    async def _refresh_registrations(self) -> None:
        newest: dict[object, KeptSocket] = {}
        superseded: list[KeptSocket] = []
        for socket in self.sockets.values():  # oldest first
            if socket.agent is None:
                continue
            if (older := newest.get(socket.agent.pk)) is not None:
                superseded.append(older)
            newest[socket.agent.pk] = socket
        agents = [(pk, socket.channel_name) for pk, socket in newest.items()]
        if not agents:
            return
        refresh = sync_to_async(connections.refresh_connections, thread_sensitive=False)
        lost = await refresh(agents)
        gone = [(pk, channel) for pk, channel in agents if channel not in self.sockets]
        unregister = sync_to_async(connections.unregister_connection, thread_sensitive=False)
        for pk, channel in gone:  # it closed meanwhile, and the refresh may have re-taken it
            await unregister(pk, channel)
        superseded += [self.sockets[ch] for _, ch in lost if ch in self.sockets]
        for socket in superseded:
            if socket.channel_name not in self.sockets:  # it left meanwhile
                continue
            try:
                await socket.agent_replaced({"type": "agent.replaced"})
            except Exception:
                log.exception("closing a superseded agent socket failed")

    async def _rejoin_groups(self) -> None:
        memberships = [(g, s.channel_name) for s in self.sockets.values() for g in s.kept_groups()]
        layer = get_channel_layer()
        for group, channel in memberships:
            await layer.group_add(group, channel)
        for group, channel in memberships:  # it closed meanwhile: its discard came too early
            if channel not in self.sockets:
                await layer.group_discard(group, channel)


_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketKeeper] = (
    weakref.WeakKeyDictionary()
)


def socket_keeper() -> SocketKeeper:
    """The keeper of the running event loop's sockets (one per server process)."""
    loop = asyncio.get_running_loop()
    keeper = _keepers.get(loop)
    if keeper is None:
        keeper = _keepers[loop] = SocketKeeper()
    return keeper
