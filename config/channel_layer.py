"""The channel layer: channels_redis's Redis layer with a group send in one round trip.

``channels_redis.core.RedisChannelLayer.group_send`` awaits four Redis commands one after the
other (drop expired members, read the members, drop each member's expired messages, the Lua
push), each a full round trip through the event loop (django/channels_redis#83, "Sending
messages is slow when using groups"). Every command to an agent and every live-page event is a
group send, so they add up on the command round trip that bench/ws.py measures.

This subclass does the same work in one script call (registered once, then run by its SHA):
``GROUP_FANOUT_LUA`` reads each group's members inside Redis, groups them by their Redis key (the
sockets of one server process share one key) and stores, for each key, the message with that
key's channels in ``__asgi_channel__``: once decoded, what the library's own ``group_send``
stores. The client packs the message once per send (the library packs it once per key). The
stored data (keys, message encoding, capacities, expiries) is the library's own, so consumers
receive through the unchanged ``receive``; tests/test_channel_layer.py checks it against the
library.

The script computes the members' keys itself, which needs every key on one Redis server (a
standalone server or Sentinel's master: the script touches keys it is not given, which Redis
Cluster and servers that enforce declared keys refuse), the msgpack serializer without
encryption and one capacity for every channel. With several Redis shards, ``channel_capacity``
patterns or ``symmetric_encryption_keys`` the layer reads the members in one pipeline and pushes
with one ``GROUP_SEND_LUA`` call per shard instead (two round trips).

Sync code (Django's HTTP threads, Celery tasks) sends with ``group_send_blocking`` (the same
script) and ``send_blocking`` (``GROUP_SEND_LUA`` for the one channel) through a blocking Redis
client, one connection pool per process and shard. ``async_to_sync`` would start an event loop
(and open a Redis connection) per send, and a shared loop in a thread costs two thread
hand-offs per send. ``group_send_many_blocking`` does several group sends in that one call (a
command's POST tells the agent's socket and the live pages at once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
import redis.sentinel
from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from channels_redis.serializers import MsgPackSerializer

logger = logging.getLogger("channels_redis.core")

# KEYS: the member channels' Redis keys; ARGV: one message per key, one capacity per key, then
# the current time, the expiry cutoff of stored messages and the key expiry. The same checks as
# the library's script, plus the expired-message cleanup it does in a separate pipeline. A
# message is scored with the current time, or a microsecond after the channel's newest message
# if that is later, so that a channel (which pops its lowest score first) receives in the order
# of the pushes, several in one call included.
GROUP_SEND_LUA = """
local over_capacity = 0
local n = #KEYS
local now = tonumber(ARGV[2 * n + 1])
local cutoff = ARGV[2 * n + 2]
local expiry = ARGV[2 * n + 3]
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, cutoff)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + n]) then
        local score = now
        local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')[2]
        if newest and tonumber(newest) >= score then score = tonumber(newest) + 0.000001 end
        redis.call('ZADD', KEYS[i], score, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""

# KEYS: the groups' keys. ARGV: one message per group (see ``_fanout_head``), then the channel
# key prefix, the capacity, the group members' expiry cutoff, and GROUP_SEND_LUA's last
# arguments (``_push_times``: the current time, the stored messages' expiry cutoff, the key
# expiry). Per group: drop the expired members; group the
# others by Redis key (the part of a channel name up to its "!", as the library's
# ``non_local_name``); per key, the same push as GROUP_SEND_LUA, of the message completed with the
# key's channel names (Redis's bundled cmsgpack packs the list, the message's last field).
# Returns the number of keys over capacity and the number of keys.
GROUP_FANOUT_LUA = """
local n = #KEYS
local prefix = ARGV[n + 1]
local capacity = tonumber(ARGV[n + 2])
local member_cutoff = ARGV[n + 3]
local now = tonumber(ARGV[n + 4])
local cutoff = ARGV[n + 5]
local expiry = ARGV[n + 6]
local over_capacity, keys = 0, 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, member_cutoff)
    local channels, order = {}, {}
    for _, name in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
        local bang = string.find(name, '!', 1, true)
        local key = prefix .. (bang and string.sub(name, 1, bang) or name)
        if channels[key] == nil then
            channels[key] = {}
            order[#order + 1] = key
        end
        table.insert(channels[key], name)
    end
    for _, key in ipairs(order) do
        keys = keys + 1
        redis.call('ZREMRANGEBYSCORE', key, 0, cutoff)
        if redis.call('ZCARD', key) < capacity then
            local score = now
            local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
            if newest and tonumber(newest) >= score then score = tonumber(newest) + 0.000001 end
            redis.call('ZADD', key, score, ARGV[i] .. cmsgpack.pack(channels[key]))
            redis.call('EXPIRE', key, expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
end
return {over_capacity, keys}
"""

# Group sends per call of ``group_send_many_blocking``: a command's POST makes 2, a broadcast two
# per connected agent.
SENDS_PER_CALL = 32

# Seconds a request thread or a Celery task waits for Redis to connect, and then for each
# answer: a hung server fails the send (logged by the caller) instead of holding the thread.
BLOCKING_TIMEOUT = 10.0


def _blocking_pool(host: dict[str, Any]) -> redis.ConnectionPool:
    """``channels_redis.utils.create_pool`` for the blocking client: the same host settings
    (plus timeouts, unless the host sets its own)."""
    host = {"socket_timeout": BLOCKING_TIMEOUT, "socket_connect_timeout": BLOCKING_TIMEOUT, **host}
    if "address" in host:
        return redis.ConnectionPool.from_url(host.pop("address"), **host)
    master_name = host.pop("master_name", None)
    if master_name is not None:
        timeouts = {k: host[k] for k in ("socket_timeout", "socket_connect_timeout")}
        sentinel_kwargs = host.pop("sentinel_kwargs", None) or timeouts
        sentinel = redis.sentinel.Sentinel(host.pop("sentinels"), sentinel_kwargs=sentinel_kwargs)
        return redis.sentinel.SentinelConnectionPool(master_name, sentinel, **host)
    return redis.ConnectionPool(**host)


class _Scripts:
    """The layer's two scripts, registered once per client: later calls go by EVALSHA."""

    def __init__(self, client: Any) -> None:
        self.push = client.register_script(GROUP_SEND_LUA)
        self.fanout = client.register_script(GROUP_FANOUT_LUA)


class RedisChannelLayer(BaseRedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._blocking: dict[int, tuple[redis.Redis, _Scripts]] = {}
        self._blocking_lock = threading.Lock()
        self._async_scripts: _Scripts | None = None
        # Whether GROUP_FANOUT_LUA can do a group send (see the module's docstring).
        serializer = self._serializer
        self.fans_out_in_redis = (
            self.ring_size == 1
            and not self.channel_capacity
            and isinstance(serializer, MsgPackSerializer)
            and getattr(serializer, "crypter", None) is None
        )

    # --- async (consumers) ----------------------------------------------------------------

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every channel of ``group`` (at most once, over capacity: dropped)."""
        connection = self.connection(self.consistent_hash(group))
        if self._async_scripts is None:
            self._async_scripts = _Scripts(connection)
        scripts = self._async_scripts
        if self.fans_out_in_redis:
            keys, args = self._fanout_arguments([(group, message)])
            over_capacity, count = await scripts.fanout(keys=keys, args=args, client=connection)
            self._log_over_capacity(over_capacity, count, [group])
            return
        pipe = self._members_pipeline(connection.pipeline(transaction=False), group)
        _, members = await pipe.execute()
        channel_names = [member.decode("utf8") for member in members]
        for index, keys, messages, capacities in self._pushes(channel_names, message):
            over_capacity = await scripts.push(
                keys=keys,
                args=messages + capacities + self._push_times(),
                client=self.connection(index),
            )
            self._log_over_capacity(over_capacity, len(keys), [group])

    # --- blocking (sync code: HTTP threads, Celery tasks) -----------------------------------

    def group_send_blocking(self, group: str, message: dict[str, Any]) -> None:
        """``group_send`` for sync code: the same Redis commands with a blocking client."""
        self.group_send_many_blocking([(group, message)])

    def group_send_many_blocking(self, sends: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Several group sends from sync code, ``SENDS_PER_CALL`` at a time in one script call
        (or, where the script cannot fan out, one members pipeline and one push per shard).

        A command's POST tells the agent's socket and the live pages this way. Within a
        channel the messages arrive in the order given; over capacity one is dropped (and
        logged) and the others still go. The chunks leave the receivers time to drain between
        calls: all the sockets of one server process share one Redis key, and a broadcast to
        every agent with its live events would otherwise fill it at once.
        """
        for start in range(0, len(sends), SENDS_PER_CALL):
            self._group_send_chunk(sends[start : start + SENDS_PER_CALL])

    def _group_send_chunk(self, sends: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if self.fans_out_in_redis:
            _, scripts = self._blocking_client(0)
            keys, args = self._fanout_arguments(sends)
            over_capacity, count = scripts.fanout(keys=keys, args=args)
            self._log_over_capacity(over_capacity, count, [group for group, _ in sends])
            return
        by_shard: dict[int, list[tuple[int, str]]] = {}
        for position, (group, _message) in enumerate(sends):
            by_shard.setdefault(self.consistent_hash(group), []).append((position, group))
        members_of: dict[int, list[bytes]] = {}
        for index, shard_sends in by_shard.items():
            client, _ = self._blocking_client(index)
            pipe = client.pipeline(transaction=False)
            for _position, group in shard_sends:
                self._members_pipeline(pipe, group)
            replies = pipe.execute()
            for (position, _group), members in zip(shard_sends, replies[1::2], strict=True):
                members_of[position] = members
        self._push_many_blocking(
            [
                ([member.decode("utf8") for member in members_of[position]], message, group)
                for position, (group, message) in enumerate(sends)  # in the order given
                if members_of[position]
            ]
        )

    def send_blocking(self, channel: str, message: dict[str, Any]) -> None:
        """Send to one channel from sync code; over capacity the message is dropped (and
        logged), as group members' are, where the library's ``send`` raises ``ChannelFull``."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        self._push_many_blocking([([channel], message, channel)])

    def _push_many_blocking(self, sends: list[tuple[list[str], dict[str, Any], str]]) -> None:
        """Push each ``(channel names, message, label)``: one GROUP_SEND_LUA call per shard."""
        pushes: dict[int, tuple[list[str], list[Any], list[Any], list[str]]] = {}
        for channel_names, message, label in sends:
            for index, keys, messages, capacities in self._pushes(channel_names, message):
                into = pushes.setdefault(index, ([], [], [], []))
                into[0].extend(keys)
                into[1].extend(messages)
                into[2].extend(capacities)
                into[3].append(label)
        for index, (keys, messages, capacities, labels) in pushes.items():
            _, scripts = self._blocking_client(index)
            over_capacity = scripts.push(keys=keys, args=messages + capacities + self._push_times())
            self._log_over_capacity(over_capacity, len(keys), labels)

    def _blocking_client(self, index: int) -> tuple[redis.Redis, _Scripts]:
        # redis-py's pool is thread-safe and resets itself in a forked child (Celery's pool).
        found = self._blocking.get(index)
        if found is None:
            with self._blocking_lock:
                found = self._blocking.get(index)
                if found is None:
                    client = redis.Redis(connection_pool=_blocking_pool(self.hosts[index]))
                    found = self._blocking[index] = (client, _Scripts(client))
        return found

    # --- shared -----------------------------------------------------------------------------

    def _fanout_arguments(
        self, sends: Sequence[tuple[str, dict[str, Any]]]
    ) -> tuple[list[bytes], list[Any]]:
        """GROUP_FANOUT_LUA's keys and arguments for ``(group, message)`` sends, in order."""
        keys = []
        for group, _message in sends:
            assert self.require_valid_group_name(group), "Group name not valid"
            keys.append(self._group_key(group))
        heads = [self._fanout_head(message) for _group, message in sends]
        member_cutoff = int(time.time()) - self.group_expiry
        return keys, [*heads, self.prefix, self.capacity, member_cutoff, *self._push_times()]

    def _fanout_head(self, message: dict[str, Any]) -> bytes:
        """The library's serialized message with ``__asgi_channel__`` last and its value left
        off: GROUP_FANOUT_LUA appends the packed list of channels. msgpack packs a dict in its
        order and None as the one byte 0xc0, so the head is the packing less that byte."""
        assert isinstance(message, dict), "message is not a dict"
        assert "__asgi_channel__" not in message
        packed = self.serialize({**message, "__asgi_channel__": None})
        assert packed.endswith(b"\xc0")
        return packed[:-1]

    def _members_pipeline(self, pipe: Any, group: str) -> Any:
        """Add to ``pipe`` (of an async or a blocking client) the two commands that drop the
        group's expired members and read the others; returns ``pipe``."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        return pipe

    def _pushes(
        self, channel_names: list[str], message: dict[str, Any]
    ) -> list[tuple[int, list[str], list[bytes], list[int]]]:
        """Per Redis shard: the channel keys, and their messages and capacities (the first
        arguments of GROUP_SEND_LUA; ``_push_times`` gives the last ones)."""
        by_connection, messages, capacities = self._map_channel_keys_to_connection(
            channel_names, message
        )
        return [
            (index, keys, [messages[k] for k in keys], [capacities[k] for k in keys])
            for index, keys in by_connection.items()
        ]

    def _push_times(self) -> list[Any]:
        """GROUP_SEND_LUA's last arguments: now, the expiry cutoff of stored messages and the
        key expiry."""
        now = time.time()
        return [now, int(now) - int(self.expiry), self.expiry]

    @staticmethod
    def _log_over_capacity(over_capacity: int, count: int, to: Sequence[str]) -> None:
        if over_capacity > 0:
            names = ", ".join(dict.fromkeys(to))
            logger.info("%s of %s channels over capacity in %s", over_capacity, count, names)

    async def group_add_many(self, memberships: Sequence[tuple[str, str]]) -> None:
        """``group_add`` for many ``(group, channel)`` pairs: one pipeline per Redis shard.

        Server processes re-join all their sockets' groups with it now and then (the library
        forgets a member after ``group_expiry``), instead of two round trips per socket.
        """
        now = time.time()
        by_shard: dict[int, list[tuple[bytes, str]]] = {}
        for group, channel in memberships:
            assert self.require_valid_group_name(group), "Group name not valid"
            assert self.require_valid_channel_name(channel), "Channel name not valid"
            shard = by_shard.setdefault(self.consistent_hash(group), [])
            shard.append((self._group_key(group), channel))
        for index, pairs in by_shard.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for key, channel in pairs:
                pipe.zadd(key, {channel: now})
            for key in dict.fromkeys(key for key, _ in pairs):
                pipe.expire(key, self.group_expiry)
            await pipe.execute()
