"""config/channel_layer.py: the one-round-trip group send (and its two-round-trip fallback),
against real Redis.

Each test uses its own key prefix, and compares with channels_redis's own layer where the
behaviour must be the same (what members receive, capacity, expiry).
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from channels_redis.core import RedisChannelLayer as LibraryLayer
from django.conf import settings

from config.channel_layer import SENDS_PER_CALL, RedisChannelLayer


def layers(**config: object) -> tuple[RedisChannelLayer, LibraryLayer]:
    options = {"hosts": [settings.REDIS_URL], "prefix": f"test-{secrets.token_hex(4)}", **config}
    return RedisChannelLayer(**options), LibraryLayer(**options)


async def drain(layer: LibraryLayer, channel: str) -> list[dict]:
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), 0.3))
        except TimeoutError:
            return received


async def test_group_members_receive_once_including_process_local_channels() -> None:
    ours, library = layers()
    # Two consumers of one process share a Redis key ("specific.X!"), a third is elsewhere.
    local_a, local_b = await ours.new_channel(), await ours.new_channel()
    remote = await library.new_channel()
    outsider = await library.new_channel()
    for channel in (local_a, local_b, remote):
        await ours.group_add("g", channel)

    await ours.group_send("g", {"type": "hello", "n": 1})

    assert await drain(ours, local_a) == [{"type": "hello", "n": 1}]
    assert await drain(ours, local_b) == [{"type": "hello", "n": 1}]
    assert await drain(library, remote) == [{"type": "hello", "n": 1}]
    assert await drain(library, outsider) == []
    await ours.flush()
    await library.flush()


async def test_empty_group_is_a_no_op() -> None:
    ours, _ = layers()
    await ours.group_send("nobody", {"type": "hello"})
    await ours.flush()


@pytest.mark.parametrize("layer_index", [0, 1])
async def test_capacity_and_message_expiry_match_the_library(layer_index: int) -> None:
    """A full channel drops the message; once its oldest message expires it accepts again."""
    layer = layers(capacity=2, expiry=60)[layer_index]
    full, free = "full-channel", "free-channel"
    for channel in (full, free):
        await layer.group_add("g", channel)
    await layer.send(full, {"type": "old", "n": 1})
    await layer.send(full, {"type": "old", "n": 2})

    await layer.group_send("g", {"type": "new", "n": 3})  # full: dropped there only
    assert [m["n"] for m in await drain(layer, free)] == [3]

    # Message 1 was stored two minutes ago: past the expiry (the key itself stays alive).
    connection = layer.connection(layer.consistent_hash(full))
    key = layer.prefix + full
    oldest = (await connection.zrange(key, 0, 0))[0]
    await connection.zadd(key, {oldest: time.time() - 120})
    await layer.group_send("g", {"type": "new", "n": 4})
    assert [m["n"] for m in await drain(layer, full)] == [2, 4]
    await layer.flush()


async def test_members_past_the_group_expiry_get_nothing() -> None:
    ours, _ = layers(group_expiry=60)
    stale, fresh = "stale-channel", "fresh-channel"
    await ours.group_add("g", fresh)
    connection = ours.connection(ours.consistent_hash("g"))
    await connection.zadd(ours._group_key("g"), {stale: time.time() - 120})

    await ours.group_send("g", {"type": "hello"})

    assert await drain(ours, fresh) == [{"type": "hello"}]
    assert await drain(ours, stale) == []
    assert await connection.zrange(ours._group_key("g"), 0, -1) == [fresh.encode()]
    await ours.flush()


def test_settings_use_this_layer_and_its_one_round_trip_group_send() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    assert layer.fans_out_in_redis


async def stored(layer: LibraryLayer, key: str) -> list[dict]:
    """The messages stored under a channel key, decoded as the library's receive decodes."""
    connection = layer.connection(0)
    return [layer.deserialize(raw) for raw in await connection.zrange(layer.prefix + key, 0, -1)]


async def test_the_script_stores_what_the_librarys_group_send_stores() -> None:
    """Per Redis key one message, with that key's channels in ``__asgi_channel__``: the same
    data whether the library sends or the script fans out in Redis."""
    from asgiref.sync import sync_to_async

    ours, library = layers()
    assert ours.fans_out_in_redis
    local_a, local_b = await ours.new_channel(), await ours.new_channel()
    remote, general = await library.new_channel(), "general-channel"
    for channel in (local_a, local_b, remote, general):
        await ours.group_add("g", channel)
    message = {"type": "hello", "text": "Привет", "n": 1, "nested": {"list": [1, "two", None]}}
    keys = (ours.non_local_name(local_a), ours.non_local_name(remote), general)

    await library.group_send("g", message)
    by_library = {key: await stored(library, key) for key in keys}
    await library.flush()
    for channel in (local_a, local_b, remote, general):
        await ours.group_add("g", channel)
    await sync_to_async(ours.group_send_blocking)("g", message)
    by_script = {key: await stored(ours, key) for key in keys}

    assert by_script == by_library
    assert by_script[keys[0]] == [{**message, "__asgi_channel__": [local_a, local_b]}]
    assert by_script[general] == [{**message, "__asgi_channel__": [general]}]
    await ours.flush()


async def test_channel_capacity_patterns_take_the_two_round_trip_path() -> None:
    """The script knows one capacity: with per-channel patterns the layer reads the members
    and pushes as before, and each channel keeps its own capacity."""
    from asgiref.sync import sync_to_async

    ours, _ = layers(capacity=5, channel_capacity={"tight-*": 1})
    assert not ours.fans_out_in_redis
    tight, roomy = "tight-channel", "roomy-channel"
    for channel in (tight, roomy):
        await ours.group_add("g", channel)

    await ours.group_send("g", {"type": "hello", "n": 1})
    await sync_to_async(ours.group_send_blocking)("g", {"type": "hello", "n": 2})

    assert [m["n"] for m in await drain(ours, tight)] == [1]
    assert [m["n"] for m in await drain(ours, roomy)] == [1, 2]
    await ours.flush()


async def test_group_add_many_stores_what_group_add_does() -> None:
    ours, library = layers(group_expiry=600)
    channels = [await ours.new_channel() for _ in range(3)]
    await library.group_add("one", channels[0])
    await ours.group_add_many(
        [("many", channels[0]), ("many", channels[1]), ("other", channels[2])]
    )
    redis = ours.connection(0)
    members = await redis.zrange(ours._group_key("many"), 0, -1, withscores=True)
    assert sorted(m for m, _ in members) == sorted(c.encode() for c in channels[:2])
    assert all(abs(score - time.time()) < 60 for _, score in members)
    assert 590 < await redis.ttl(ours._group_key("many")) <= 600
    assert 590 < await redis.ttl(ours._group_key("other")) <= 600
    assert 590 < await redis.ttl(library._group_key("one")) <= 600  # the library sets the same
    # and the members receive group sends
    await ours.group_send("many", {"type": "hello"})
    assert await drain(ours, channels[1]) == [{"type": "hello"}]
    assert await drain(ours, channels[2]) == []
    with pytest.raises(TypeError, match="Group name must be"):
        await ours.group_add_many([("not a valid group!", channels[0])])
    await ours.flush()
    await library.flush()


async def test_blocking_sends_deliver_what_the_async_ones_do() -> None:
    """Sync code's group_send_blocking / send_blocking: received by the library's receive."""
    from asgiref.sync import sync_to_async

    ours, library = layers()
    local_a, local_b = await ours.new_channel(), await ours.new_channel()
    remote, general = await library.new_channel(), "general-channel"
    for channel in (local_a, local_b, remote, general):
        await ours.group_add("g", channel)

    await sync_to_async(ours.group_send_blocking)("g", {"type": "hello", "n": 1})
    await sync_to_async(ours.send_blocking)(local_b, {"type": "direct", "n": 2})
    await sync_to_async(ours.send_blocking)(remote, {"type": "direct", "n": 3})

    assert await drain(ours, local_a) == [{"type": "hello", "n": 1}]
    assert await drain(ours, local_b) == [{"type": "hello", "n": 1}, {"type": "direct", "n": 2}]
    assert await drain(library, remote) == [{"type": "hello", "n": 1}, {"type": "direct", "n": 3}]
    assert await drain(library, general) == [{"type": "hello", "n": 1}]
    await sync_to_async(ours.group_send_blocking)("nobody", {"type": "hello"})  # a no-op
    with pytest.raises(TypeError, match="Group name must be"):
        ours.group_send_blocking("not a valid group!", {"type": "hello"})
    await ours.flush()
    await library.flush()


async def test_blocking_sends_keep_capacity_and_group_expiry() -> None:
    from asgiref.sync import sync_to_async

    ours, _ = layers(capacity=2, group_expiry=60)
    full, stale = "full-channel", "stale-channel"
    await ours.group_add("g", full)
    connection = ours.connection(0)
    await connection.zadd(ours._group_key("g"), {stale: time.time() - 120})
    await ours.send(full, {"type": "old", "n": 1})
    await ours.send(full, {"type": "old", "n": 2})

    await sync_to_async(ours.group_send_blocking)("g", {"type": "new", "n": 3})  # full: dropped
    await sync_to_async(ours.send_blocking)(full, {"type": "new", "n": 4})  # dropped, no error

    assert [m["n"] for m in await drain(ours, full)] == [1, 2]
    assert await drain(ours, stale) == []
    assert await connection.zrange(ours._group_key("g"), 0, -1) == [full.encode()]
    await ours.flush()


async def test_several_group_sends_in_one_call_arrive_in_order() -> None:
    """group_send_many_blocking (a command's POST: the agent's group and the live pages'):
    every member of every group gets its messages, in the order given, even within a channel
    that several of them reach."""
    from asgiref.sync import sync_to_async

    ours, library = layers()
    agent, page = await ours.new_channel(), await library.new_channel()
    both, outsider = await ours.new_channel(), await library.new_channel()
    await ours.group_add("agent", agent)
    await ours.group_add("pages", page)
    for group in ("agent", "pages"):
        await ours.group_add(group, both)
    sends = [("agent", {"type": "command", "n": 0}), ("pages", {"type": "event", "n": 1})]
    # More than one call's worth (SENDS_PER_CALL), and a send to a group nobody is in.
    sends += [("pages", {"type": "event", "n": n}) for n in range(2, 80)]
    sends.append(("nobody", {"type": "lost", "n": 80}))
    assert len(sends) > SENDS_PER_CALL

    await sync_to_async(ours.group_send_many_blocking)(sends)

    assert await drain(ours, agent) == [{"type": "command", "n": 0}]
    assert [m["n"] for m in await drain(library, page)] == list(range(1, 80))
    assert [m["n"] for m in await drain(ours, both)] == list(range(80))
    assert await drain(library, outsider) == []
    await sync_to_async(ours.group_send_many_blocking)([])  # nothing to send: no error
    await ours.flush()
    await library.flush()


async def test_one_call_keeps_each_channels_capacity() -> None:
    """Over capacity within one call, the later messages are dropped, the earlier kept, and
    the other channels still get theirs."""
    from asgiref.sync import sync_to_async

    ours, _ = layers(capacity=2)
    full, free = "full-channel", "free-channel"  # two Redis keys (one process's share one)
    await ours.group_add("g", full)
    await ours.group_add("h", free)
    sends = [("g", {"type": "m", "n": n}) for n in range(4)] + [("h", {"type": "m", "n": 9})]

    await sync_to_async(ours.group_send_many_blocking)(sends)

    assert [m["n"] for m in await drain(ours, full)] == [0, 1]
    assert [m["n"] for m in await drain(ours, free)] == [9]
    await ours.flush()


def test_a_hung_redis_fails_a_blocking_send_instead_of_holding_the_thread() -> None:
    """A server that accepts and never answers: the send gives up after the timeout."""
    import socket

    import redis

    import config.channel_layer as module

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"])
        old, module.BLOCKING_TIMEOUT = module.BLOCKING_TIMEOUT, 0.5
        try:
            with pytest.raises(redis.TimeoutError):
                layer.group_send_blocking("g", {"type": "hello"})
        finally:
            module.BLOCKING_TIMEOUT = old


async def test_blocking_sends_find_each_channel_on_its_own_shard() -> None:
    """Two Redis hosts (here two databases of one server): each message lands on the shard the
    library's receive reads."""
    from urllib.parse import urlsplit, urlunsplit

    from asgiref.sync import sync_to_async

    url = urlsplit(settings.REDIS_URL)
    db = int(url.path.strip("/") or 0)
    other = urlunsplit(url._replace(path=f"/{(db + 1) % 16}"))
    ours, _ = layers(hosts=[settings.REDIS_URL, other])
    # Receiving processes whose channels live on shard 0 and on shard 1.
    receivers: dict[int, LibraryLayer] = {}
    channels: dict[int, str] = {}
    while len(receivers) < 2:
        layer = LibraryLayer(hosts=ours.hosts, prefix=ours.prefix)
        channel = await layer.new_channel()
        shard = layer.consistent_hash(layer.non_local_name(channel))
        if shard not in receivers:
            receivers[shard], channels[shard] = layer, channel
    for channel in channels.values():
        await ours.group_add("g", channel)

    # One group per shard too, for the sends that read several groups in one call.
    groups: dict[int, str] = {}
    for n in range(100):
        groups.setdefault(ours.consistent_hash(f"g{n}"), f"g{n}")
    assert len(groups) == 2
    for shard, group in groups.items():
        await ours.group_add(group, channels[1 - shard])

    await sync_to_async(ours.group_send_blocking)("g", {"type": "hello"})
    await sync_to_async(ours.send_blocking)(channels[1], {"type": "direct"})
    await sync_to_async(ours.group_send_many_blocking)(
        [(group, {"type": "many", "shard": shard}) for shard, group in groups.items()]
    )
    # A channel in groups of both shards gets their messages in the order given.
    await ours.group_add(groups[0], channels[0])
    mixed = [(groups[0], 1), (groups[1], 2), (groups[0], 3)]
    await sync_to_async(ours.group_send_many_blocking)(
        [(group, {"type": "mixed", "n": n}) for group, n in mixed]
    )

    assert await drain(receivers[0], channels[0]) == [
        {"type": "hello"},
        {"type": "many", "shard": 1},
        *({"type": "mixed", "n": n} for n in (1, 2, 3)),
    ]
    assert await drain(receivers[1], channels[1]) == [
        {"type": "hello"},
        {"type": "direct"},
        {"type": "many", "shard": 0},
        {"type": "mixed", "n": 1},
        {"type": "mixed", "n": 3},
    ]
    for channel in channels.values():
        await ours.group_discard("g", channel)
    for shard, group in groups.items():
        await ours.group_discard(group, channels[1 - shard])
    await ours.group_discard(groups[0], channels[0])
    for layer in (ours, *receivers.values()):
        await layer.flush()
