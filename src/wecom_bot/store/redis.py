"""The outbox and the shared rate limiter on Redis, for several gateway instances.

Data layout (``P`` is the key prefix, ``wecom-bot:`` by default; ``m`` is a record id padded
to 15 digits so that sorted-set ties fall back to id order)::

    P seq                 counter of record ids
    P rec:<id>            hash: one record, every field a string ("" for none)
    P bots                set of bot names that ever had a record
    P age:<bot>           zset  undelivered (pending + leased)  m -> created_at
    P pend:<bot>          zset  pending                         m -> next_attempt_at
    P wait:<bot>          zset  pending, not yet seen due       m -> next_attempt_at
    P ready:<bot>         zset  pending and due (claim order)   m -> rank (claim_rank)
    P leased:<bot>        zset  leased                          m -> lease_until
    P dead:<bot>          zset  dead letters                    m -> id
    P sent                zset  delivered records               m -> sent time
    P notif:<id>          set   record ids carrying a notification id
    P dedup               zset  idempotency keys                key -> expiry time
    P sends:<key id>      zset  the send log of one key         at|r or s|nonce -> at
    P grp:<group>         hash: one open alert group
    P grps                zset  open groups                     group -> opened_at
    P tms:<group>         set   the keys of a group's timers
    P tm:<timer>          hash: one timer (<timer>: its group, a NUL character, its key)
    P tm-due              zset  timers                          <timer> -> when claimable
    P epoch               string  the data set's identity (see check_identity)

Every state change is one Lua script, so it is atomic: two instances never lease the same
record, an enqueue with its idempotency check is one step, and a digest replaces its
originals, or a settled record becomes its messages, in one step. Scripts check everything
before their first write because Redis does not roll a script back. A lease left by a dead
instance runs out and the record is claimed again by any instance (at-least-once).

Leases are timed on one clock, the Redis server's (``TIME``, read inside the scripts): the
instances' own clocks may disagree by more than a lease without one taking the records of
another that is alive. A live owner renews its leases (:meth:`RedisOutbox.renew`) long before
they end, and gives records it cannot send at once back instead of holding them. When the
server's clock steps back, a claim cuts any lease ending more than a lease from now back to
one lease (its live owner renews it; a dead one's records return after a lease, not after the
step). A step forward of the server's clock larger than a lease would end live leases early:
keep the Redis host on NTP slewing (``chronyd``'s default ``makestep`` only at boot). Every
other stored time (created, due, sent) is the callers' clock, so a skewed instance sees due
times off by its skew, which shifts when it sends, never whether. The
scripts build key names from the prefix, so this runs on a single Redis (with replicas or
Sentinel), not on Redis Cluster.

Timestamps travel as strings both ways (Lua would print them with 14 significant digits);
arithmetic on them happens in Python, except for lease ends the scripts compute from ``TIME``
(written with ``%.17g``).

What Redis must persist: run it with ``appendonly yes`` (``appendfsync everysec`` loses at most
about a second of accepted messages if the Redis host dies; ``always`` loses none). When Redis
is unreachable every call raises :class:`~wecom_bot.store.base.StoreUnavailableError` and the
gateway answers 503, so nothing is accepted that is not stored. A Redis that comes back without
its data (no persistence, ``FLUSHALL``, a failover to an empty replica) answers every call
happily; the ``epoch`` key tells: the first :meth:`RedisOutbox.check_identity` writes a random
value there unless one is (``SET NX``, so every instance adopts the first one) and later calls
compare. :meth:`RedisOutbox.durability_warning` reads ``appendonly`` and ``save``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from ..ratelimit import SLOW_ANSWER, Rate, parse_rate
from ._batching import TurnBatch
from .base import (
    LEASE_EXPIRED_ERROR,
    PRIORITY_AGING,
    STANDING_PREFIX,
    Acknowledged,
    Armed,
    Clock,
    GroupRecord,
    LeaseLostError,
    NewMessage,
    NewTimer,
    Outbox,
    OutboxRecord,
    Priority,
    SendMark,
    Status,
    StoreOpenError,
    StoreUnavailableError,
    TimerLostError,
    TimerRecord,
    check_claim_arguments,
    check_keep,
    check_replace,
    check_timers,
    cut_error,
    encode_json,
)

DEFAULT_PREFIX: Final = "wecom-bot:"

# The aging delay of each priority (see claim_rank), as a Lua table.
_AGING_LUA: Final = (
    "local AGING = {"
    + ", ".join(f"[{int(p)}] = {delay!r}" for p, delay in PRIORITY_AGING.items())
    + "}\n"
)

_LIB: Final = (
    _AGING_LUA
    + r"""
local P = ARGV[1]
local function rk(id) return P .. 'rec:' .. id end
local function bk(kind, bot) return P .. kind .. ':' .. bot end
local function pad(id) return string.format('%015d', tonumber(id)) end
local function unpad(m) return tostring(tonumber(m)) end
local function unqueue(bot, m)
  redis.call('ZREM', bk('pend', bot), m)
  redis.call('ZREM', bk('wait', bot), m)
  redis.call('ZREM', bk('ready', bot), m)
  redis.call('ZREM', bk('leased', bot), m)
end
local function make_pending(id, bot, due, now)
  local m = pad(id)
  unqueue(bot, m)
  redis.call('ZADD', bk('pend', bot), due, m)
  redis.call('ZADD', bk('wait', bot), due, m)
  redis.call('ZADD', bk('age', bot), redis.call('HGET', rk(id), 'created_at'), m)
  redis.call('HSET', rk(id), 'status', 'pending', 'next_attempt_at', due,
             'lease_until', '', 'updated_at', now)
end
local function finish(bot, m)
  unqueue(bot, m)
  redis.call('ZREM', bk('age', bot), m)
end
local function mark_sent(id, bot, now)
  local m = pad(id)
  finish(bot, m)
  redis.call('HSET', rk(id), 'status', 'sent', 'lease_until', '', 'updated_at', now)
  redis.call('ZADD', P .. 'sent', now, m)
end
local function lease_clock(given)
  if given ~= '' then return given end
  local t = redis.call('TIME')
  return string.format('%.17g', tonumber(t[1]) + tonumber(t[2]) / 1000000)
end
local function recover(bot, lnow, now, err)
  local expired = redis.call('ZRANGEBYSCORE', bk('leased', bot), '-inf', lnow)
  for _, m in ipairs(expired) do
    local id = unpad(m)
    local due = redis.call('HGET', rk(id), 'lease_until')
    if tonumber(due) > tonumber(now) then due = now end
    make_pending(id, bot, due, now)
    redis.call('HINCRBY', rk(id), 'attempts', 1)
    redis.call('HSET', rk(id), 'last_error', err)
  end
  return #expired
end
local function rank_of(id)
  local r = redis.call('HMGET', rk(id), 'created_at', 'priority')
  return string.format('%.17g', tonumber(r[1]) + (AGING[tonumber(r[2]) or 0] or 0))
end
local function insert(bot, kind, coal, payload, prio, nids, due, now, created, status, lease,
                      dedup)
  local id = redis.call('INCR', P .. 'seq')
  local m = pad(id)
  redis.call('HSET', rk(id), 'id', id, 'bot', bot, 'kind', kind, 'coalescible', coal,
             'priority', prio,
             'payload', payload, 'status', status, 'attempts', 0, 'created_at', created,
             'next_attempt_at', due, 'updated_at', now, 'lease_until', lease,
             'last_error', '', 'notification_ids', nids, 'dedup_key', dedup, 'replaced_by', '')
  redis.call('SADD', P .. 'bots', bot)
  redis.call('ZADD', bk('age', bot), created, m)
  if status == 'pending' then
    redis.call('ZADD', bk('pend', bot), due, m)
    redis.call('ZADD', bk('wait', bot), due, m)
  else
    redis.call('ZADD', bk('leased', bot), lease, m)
  end
  for _, nid in ipairs(cjson.decode(nids)) do
    redis.call('SADD', P .. 'notif:' .. nid, id)
  end
  return id
end
local function forget(id)
  local nids = redis.call('HGET', rk(id), 'notification_ids')
  if nids then
    for _, nid in ipairs(cjson.decode(nids)) do
      redis.call('SREM', P .. 'notif:' .. nid, id)
    end
  end
  redis.call('DEL', rk(id))
end
"""
)

# ARGV: P, now, dedup_key ("" = none), dedup_expiry, then 7 per message:
# bot, kind, coalescible, payload, priority, notification_ids (JSON), next_attempt_at
_ENQUEUE: Final = r"""
local now, key = ARGV[2], ARGV[3]
if key ~= '' then
  local expiry = redis.call('ZSCORE', P .. 'dedup', key)
  if expiry and tonumber(expiry) > tonumber(now) then return {0} end
  redis.call('ZREMRANGEBYSCORE', P .. 'dedup', '-inf', now)
  redis.call('ZADD', P .. 'dedup', ARGV[4], key)
end
local out = {1}
for i = 5, #ARGV, 7 do
  out[#out + 1] = insert(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                         ARGV[i + 5], ARGV[i + 6], now, now, 'pending', '', key)
end
return out
"""

# ARGV: P, bot, now, limit, lease seconds, lease-expired error, lease clock ("" = Redis TIME)
_CLAIM: Final = r"""
local bot, now = ARGV[2], ARGV[3]
local lnow, lsec = lease_clock(ARGV[7]), tonumber(ARGV[5])
if ARGV[7] == '' then
  -- The server's clock stepped back: a lease cannot end later than one lease from now (a
  -- live owner renews it; a dead one's comes back after one lease, not after the step).
  local most = tonumber(lnow) + lsec
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', bk('leased', bot), '(' .. (most + 1), '+inf')) do
    local capped = string.format('%.17g', most)
    redis.call('ZADD', bk('leased', bot), capped, m)
    redis.call('HSET', rk(unpad(m)), 'lease_until', capped)
  end
end
recover(bot, lnow, now, ARGV[6])
local lease = string.format('%.17g', tonumber(lnow) + lsec)
local due = redis.call('ZRANGEBYSCORE', bk('wait', bot), '-inf', now)
for _, m in ipairs(due) do
  redis.call('ZADD', bk('ready', bot), rank_of(unpad(m)), m)
end
if #due > 0 then redis.call('ZREMRANGEBYSCORE', bk('wait', bot), '-inf', now) end
local out = {}
for _, m in ipairs(redis.call('ZRANGE', bk('ready', bot), 0, tonumber(ARGV[4]) - 1)) do
  local id = unpad(m)
  redis.call('ZREM', bk('ready', bot), m)
  redis.call('ZREM', bk('pend', bot), m)
  redis.call('ZADD', bk('leased', bot), lease, m)
  redis.call('HSET', rk(id), 'status', 'leased', 'lease_until', lease, 'updated_at', now)
  out[#out + 1] = redis.call('HGETALL', rk(id))
end
return out
"""

# ARGV: P, now, lease seconds, lease clock ("" = Redis TIME), ids...
_RENEW: Final = r"""
local lease = string.format('%.17g', tonumber(lease_clock(ARGV[4])) + tonumber(ARGV[3]))
local count = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', rk(id), 'status') == 'leased' then
    redis.call('ZADD', bk('leased', redis.call('HGET', rk(id), 'bot')), lease, pad(id))
    redis.call('HSET', rk(id), 'lease_until', lease, 'updated_at', ARGV[2])
    count = count + 1
  end
end
return count
"""

# ARGV: P, now, ids...
_UNCLAIM: Final = r"""
local count = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', rk(id), 'status') == 'leased' then
    make_pending(id, redis.call('HGET', rk(id), 'bot'), ARGV[2], ARGV[2])
    count = count + 1
  end
end
return count
"""

# ARGV: P, now, ids...
_ACK: Final = r"""
local count = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local status = redis.call('HGET', rk(id), 'status')
  if status and status ~= 'sent' then
    local bot = redis.call('HGET', rk(id), 'bot')
    redis.call('ZREM', bk('dead', bot), pad(id))
    mark_sent(id, bot, ARGV[2])
    count = count + 1
  end
end
return count
"""

# ARGV: P, id, next_attempt_at, error, now
_RELEASE: Final = r"""
local id = ARGV[2]
if redis.call('HGET', rk(id), 'status') ~= 'leased' then return 0 end
make_pending(id, redis.call('HGET', rk(id), 'bot'), ARGV[3], ARGV[5])
redis.call('HINCRBY', rk(id), 'attempts', 1)
redis.call('HSET', rk(id), 'last_error', ARGV[4])
return 1
"""

# ARGV: P, id, error, now
_DEAD: Final = r"""
local id = ARGV[2]
local status = redis.call('HGET', rk(id), 'status')
if status ~= 'pending' and status ~= 'leased' then return 0 end
local bot, m = redis.call('HGET', rk(id), 'bot'), pad(id)
finish(bot, m)
redis.call('ZADD', bk('dead', bot), id, m)
if status == 'leased' then redis.call('HINCRBY', rk(id), 'attempts', 1) end
redis.call('HSET', rk(id), 'status', 'dead', 'last_error', ARGV[3], 'lease_until', '',
           'updated_at', ARGV[4])
return 1
"""

# ARGV: P, now, ids...
_REQUEUE: Final = r"""
local count = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', rk(id), 'status') == 'dead' then
    local bot = redis.call('HGET', rk(id), 'bot')
    redis.call('ZREM', bk('dead', bot), pad(id))
    make_pending(id, bot, ARGV[2], ARGV[2])
    redis.call('HSET', rk(id), 'attempts', 0)
    count = count + 1
  end
end
return count
"""

# ARGV: P, ids...
_DISCARD: Final = r"""
local count = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', rk(id), 'status') == 'dead' then
    redis.call('ZREM', bk('dead', redis.call('HGET', rk(id), 'bot')), pad(id))
    forget(id)
    count = count + 1
  end
end
return count
"""

# ARGV: P, now, n_claimed, claimed ids..., then 6 per message:
# bot, kind, coalescible, payload, priority, own notification id ("" = none)
_REPLACE: Final = r"""
local now, n = ARGV[2], tonumber(ARGV[3])
local lost, created, lease, merged, seen = {}, nil, nil, {}, {}
for i = 4, 3 + n do
  local id = ARGV[i]
  local rec = redis.call('HMGET', rk(id), 'status', 'created_at', 'lease_until',
                         'notification_ids')
  if rec[1] ~= 'leased' then
    lost[#lost + 1] = id
  else
    if created == nil or tonumber(rec[2]) < tonumber(created) then created = rec[2] end
    if lease == nil or tonumber(rec[3]) > tonumber(lease) then lease = rec[3] end
    for _, nid in ipairs(cjson.decode(rec[4])) do
      if not seen[nid] then seen[nid] = true; merged[#merged + 1] = nid end
    end
  end
end
if #lost > 0 then
  table.insert(lost, 1, 'lost')
  return lost
end
local out, first = {'ok'}, nil
for i = 4 + n, #ARGV, 6 do
  local nids, extra = {}, ARGV[i + 5]
  for _, nid in ipairs(merged) do nids[#nids + 1] = nid end
  if extra ~= '' and not seen[extra] then nids[#nids + 1] = extra end
  local encoded = '[]'
  if #nids > 0 then encoded = cjson.encode(nids) end
  local id = insert(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], encoded,
                    now, now, created, 'leased', lease, '')
  if first == nil then first = id end
  out[#out + 1] = redis.call('HGETALL', rk(id))
end
for i = 4, 3 + n do
  local id = ARGV[i]
  mark_sent(id, redis.call('HGET', rk(id), 'bot'), now)
  redis.call('HSET', rk(id), 'replaced_by', first)
end
return out
"""

# ARGV: P, now, claimed id, then 7 per message as for _ENQUEUE
_SETTLE: Final = r"""
local now, id = ARGV[2], ARGV[3]
local rec = redis.call('HMGET', rk(id), 'status', 'bot', 'created_at')
if rec[1] ~= 'leased' then return {0} end
local out = {1}
for i = 4, #ARGV, 7 do
  out[#out + 1] = insert(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                         ARGV[i + 5], ARGV[i + 6], now, rec[3], 'pending', '', '')
end
mark_sent(id, rec[2], now)
return out
"""

# ARGV: P, now, lease-expired error, lease clock ("" = Redis TIME)
_RECOVER_ALL: Final = r"""
local count, lnow = 0, lease_clock(ARGV[4])
for _, bot in ipairs(redis.call('SMEMBERS', P .. 'bots')) do
  count = count + recover(bot, lnow, ARGV[2], ARGV[3])
end
return count
"""

# ARGV: P, before (exclusive)
_PURGE_SENT: Final = r"""
local doomed = redis.call('ZRANGEBYSCORE', P .. 'sent', '-inf', '(' .. ARGV[2])
for _, m in ipairs(doomed) do forget(unpad(m)) end
if #doomed > 0 then redis.call('ZREMRANGEBYSCORE', P .. 'sent', '-inf', '(' .. ARGV[2]) end
return #doomed
"""


_GROUP_LIB: Final = (
    f"local STANDING = '{STANDING_PREFIX}'\n"
    + r"""
local function standing(gid) return string.sub(gid, 1, #STANDING) == STANDING end
local function tmember(gid, key) return gid .. '\0' .. key end
local function tkey(m) return P .. 'tm:' .. m end
local function drop_timers(gid)
  local set = P .. 'tms:' .. gid
  for _, key in ipairs(redis.call('SMEMBERS', set)) do
    local m = tmember(gid, key)
    redis.call('ZREM', P .. 'tm-due', m)
    redis.call('DEL', tkey(m))
  end
  redis.call('DEL', set)
end
local function forget_group(gid)
  drop_timers(gid)
  redis.call('DEL', P .. 'grp:' .. gid)
  redis.call('ZREM', P .. 'grps', gid)
end
local function new_group(gid, now, info)
  redis.call('HSET', P .. 'grp:' .. gid, 'id', gid, 'opened_at', now, 'updated_at', now,
             'info', info, 'acknowledged_by', '', 'acknowledged_at', '', 'silenced_until', '')
  redis.call('ZADD', P .. 'grps', now, gid)
end
-- Timers from ARGV[first..last], 3 per timer: key, due_at, payload.
local function add_timers(gid, first, last)
  for i = first, last, 3 do
    local key, due = ARGV[i], ARGV[i + 1]
    local m = tmember(gid, key)
    redis.call('HSET', tkey(m), 'group_id', gid, 'key', key, 'due_at', due,
               'payload', ARGV[i + 2], 'fired', 0, 'claim', '', 'lease_until', '')
    redis.call('SADD', P .. 'tms:' .. gid, key)
    redis.call('ZADD', P .. 'tm-due', due, m)
  end
end
"""
)

# ARGV: P, group id, now, info, then 3 per timer: key, due_at, payload
_OPEN_GROUP: Final = r"""
local gid, now = ARGV[2], ARGV[3]
local g = P .. 'grp:' .. gid
if redis.call('EXISTS', g) == 1 then
  redis.call('HSET', g, 'info', ARGV[4], 'updated_at', now)
  return 0
end
new_group(gid, now, ARGV[4])
add_timers(gid, 5, #ARGV)
return 1
"""

# ARGV: P, group id, now, info, only_new ("1"/"0"), timer count n, then 3 per timer: key,
# due_at, payload, then 7 per message as for _ENQUEUE (stored only if the group had no timer)
_ARM_GROUP: Final = r"""
local gid, now = ARGV[2], ARGV[3]
local g = P .. 'grp:' .. gid
local found = redis.call('EXISTS', g) == 1
if found and ARGV[5] == '1' then return {1} end
local state = 0
if found then
  state = 2
  if redis.call('SCARD', P .. 'tms:' .. gid) == 0 then state = 3 end
  drop_timers(gid)
  redis.call('HSET', g, 'info', ARGV[4], 'updated_at', now)
else
  new_group(gid, now, ARGV[4])
end
local last = 7 + 3 * tonumber(ARGV[6]) - 1
add_timers(gid, 7, last)
local out = {state}
if state == 3 then
  for i = last + 1, #ARGV, 7 do
    out[#out + 1] = insert(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                           ARGV[i + 5], ARGV[i + 6], now, now, 'pending', '', '')
  end
end
return out
"""

# ARGV: P, group id, by, silenced_until ("" = keep), now
_ACK_GROUP: Final = r"""
local g = P .. 'grp:' .. ARGV[2]
if redis.call('EXISTS', g) == 0 then return 0 end
local before = redis.call('HGET', g, 'acknowledged_at')
drop_timers(ARGV[2])
redis.call('HSET', g, 'acknowledged_by', ARGV[3], 'acknowledged_at', ARGV[5],
           'updated_at', ARGV[5])
if ARGV[4] ~= '' then redis.call('HSET', g, 'silenced_until', ARGV[4]) end
if before and before ~= '' then return 2 end
return 1
"""

# ARGV: P, group id
_RESOLVE_GROUP: Final = r"""
if redis.call('EXISTS', P .. 'grp:' .. ARGV[2]) == 0 then return 0 end
forget_group(ARGV[2])
return 1
"""

# ARGV: P, "list" and a limit, or "ids", "" and group ids
_READ_GROUPS: Final = r"""
local ids = {}
if ARGV[2] == 'list' then
  for _, gid in ipairs(redis.call('ZRANGE', P .. 'grps', 0, -1)) do
    if #ids >= tonumber(ARGV[3]) then break end
    if not standing(gid) then ids[#ids + 1] = gid end
  end
else
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local out = {}
for _, gid in ipairs(ids) do
  local g = redis.call('HGETALL', P .. 'grp:' .. gid)
  if #g > 0 then
    local timers = {}
    for _, key in ipairs(redis.call('SMEMBERS', P .. 'tms:' .. gid)) do
      timers[#timers + 1] = redis.call('HGETALL', tkey(tmember(gid, key)))
    end
    out[#out + 1] = {g, timers}
  end
end
return out
"""

# ARGV: P, now, limit, lease_until, claim token
_CLAIM_TIMERS: Final = r"""
local out = {}
local due = redis.call('ZRANGEBYSCORE', P .. 'tm-due', '-inf', ARGV[2], 'LIMIT', 0,
                       tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('HSET', tkey(m), 'claim', ARGV[5], 'lease_until', ARGV[4])
  redis.call('ZADD', P .. 'tm-due', ARGV[4], m)
  out[#out + 1] = redis.call('HGETALL', tkey(m))
end
return out
"""

# ARGV: P, now, group id, key, claim token, next_due_at ("" = done), then 7 per message as
# for _ENQUEUE
_FIRE_TIMER: Final = r"""
local now, gid, key = ARGV[2], ARGV[3], ARGV[4]
local m = tmember(gid, key)
local held = redis.call('HGET', tkey(m), 'claim')
if (not held) or held == '' or held ~= ARGV[5] then return {0} end
local out = {1}
for i = 7, #ARGV, 7 do
  out[#out + 1] = insert(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                         ARGV[i + 5], ARGV[i + 6], now, now, 'pending', '', '')
end
if ARGV[6] == '' then
  redis.call('DEL', tkey(m))
  redis.call('ZREM', P .. 'tm-due', m)
  redis.call('SREM', P .. 'tms:' .. gid, key)
else
  redis.call('HSET', tkey(m), 'due_at', ARGV[6], 'claim', '', 'lease_until', '')
  redis.call('HINCRBY', tkey(m), 'fired', 1)
  redis.call('ZADD', P .. 'tm-due', ARGV[6], m)
end
return out
"""

# ARGV: P, before, now
_PURGE_GROUPS: Final = r"""
local count = 0
for _, gid in ipairs(redis.call('ZRANGE', P .. 'grps', 0, -1)) do
  local g = redis.call('HMGET', P .. 'grp:' .. gid, 'updated_at', 'silenced_until')
  local stale = g[1] and tonumber(g[1]) < tonumber(ARGV[2]) and not standing(gid)
  local unsilenced = g[2] and g[2] ~= '' and tonumber(g[2]) <= tonumber(ARGV[3])
    and not standing(gid)
  if stale or unsilenced then
    forget_group(gid)
    count = count + 1
  end
end
return count
"""

# ARGV: P, keep
_TRIM_GROUPS: Final = r"""
local keep = tonumber(ARGV[2])
if redis.call('ZCARD', P .. 'grps') <= keep then return 0 end
local waiting = {}
for _, gid in ipairs(redis.call('ZRANGE', P .. 'grps', 0, -1)) do
  local g = redis.call('HMGET', P .. 'grp:' .. gid, 'updated_at', 'acknowledged_by')
  if ((not g[2]) or g[2] == '') and not standing(gid) then
    waiting[#waiting + 1] = {tonumber(g[1]) or 0, gid}
  end
end
local over = #waiting - keep
if over <= 0 then return 0 end
table.sort(waiting, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
for i = 1, over do forget_group(waiting[i][2]) end
return over
"""


def _t(value: float) -> str:
    return repr(float(value))


def _opt(value: str) -> float | None:
    return float(value) if value else None


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _record(fields: Mapping[str, str]) -> OutboxRecord:
    return OutboxRecord(
        id=int(fields["id"]),
        bot=fields["bot"],
        kind=fields["kind"],
        payload=json.loads(fields["payload"]),
        status=Status(fields["status"]),
        attempts=int(fields["attempts"]),
        created_at=float(fields["created_at"]),
        next_attempt_at=float(fields["next_attempt_at"]),
        updated_at=float(fields["updated_at"]),
        lease_until=_opt(fields["lease_until"]),
        last_error=fields["last_error"] or None,
        notification_ids=tuple(json.loads(fields["notification_ids"])),
        dedup_key=fields["dedup_key"] or None,
        coalescible=fields["coalescible"] == "1",
        replaced_by=int(fields["replaced_by"]) if fields["replaced_by"] else None,
        priority=Priority(int(fields.get("priority") or 0)),
    )


_STATE_FIELDS = (
    "id", "bot", "kind", "status", "attempts", "created_at", "next_attempt_at", "updated_at",
    "lease_until", "coalescible", "replaced_by", "priority",
)  # fmt: skip
_UNREAD_FIELDS = {"payload": "{}", "notification_ids": "[]", "last_error": "", "dedup_key": ""}


def _state_record(row: Sequence[str]) -> OutboxRecord:
    """A record read with :data:`_STATE_FIELDS` only: no payload, no notification ids."""
    fields = dict(zip(_STATE_FIELDS, row, strict=True))
    return _record({**_UNREAD_FIELDS, **fields})


def _timer(fields: Mapping[str, str]) -> TimerRecord:
    return TimerRecord(
        group_id=fields["group_id"],
        key=fields["key"],
        due_at=float(fields["due_at"]),
        payload=json.loads(fields["payload"]),
        fired=int(fields["fired"]),
        claim=fields["claim"] or None,
        lease_until=_opt(fields["lease_until"]),
    )


def _group(row: Sequence[Any]) -> GroupRecord:
    fields = _pairs(row[0])
    timers = sorted((_timer(_pairs(t)) for t in row[1]), key=lambda t: (t.due_at, t.key))
    return GroupRecord(
        id=fields["id"],
        opened_at=float(fields["opened_at"]),
        updated_at=float(fields["updated_at"]),
        info=json.loads(fields["info"]),
        acknowledged_by=fields["acknowledged_by"] or None,
        acknowledged_at=_opt(fields["acknowledged_at"]),
        silenced_until=_opt(fields["silenced_until"]),
        timers=tuple(timers),
    )


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def _message_args(message: NewMessage, payload: str) -> list[str]:
    return [
        message.bot,
        message.kind,
        "1" if message.is_coalescible else "0",
        payload,
        str(int(message.priority)),
    ]


def _pending_args(message: NewMessage, now: float) -> list[str]:
    """The 7 script arguments of a message stored PENDING (enqueue, settle, fire_timer)."""
    nids = [message.notification_id] if message.notification_id else []
    return [
        *_message_args(message, message.encoded()),
        json.dumps(nids, ensure_ascii=False),
        _t(now if message.not_before is None else message.not_before),
    ]


class RedisOutbox(Outbox):
    """An :class:`~wecom_bot.store.base.Outbox` on Redis, shared by several gateway instances.

    Args:
        client: a ``redis.asyncio.Redis`` created with ``decode_responses=True``; the outbox
            closes it on :meth:`close`.
        prefix: prepended to every key, so several deployments can share one Redis.
        location: a description for logs (the URL with its password masked).
        clock: the time source used when a method is called without ``now``.
        server_leases: time leases on the Redis server's clock (``TIME``, read inside the
            scripts), so that instances whose clocks disagree agree on when a lease runs out;
            ``False`` times them on ``now`` like everything else (tests on a fake clock).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        location: str = "redis",
        clock: Clock = time.time,
        server_leases: bool = True,
    ) -> None:
        super().__init__(clock=clock)
        self.server_leases = server_leases
        self.client = client
        self.prefix = prefix
        self.location = location
        self._closed = False
        self._epoch: str | None = None
        # enqueue_once calls of the current turn of the event loop, sent in one pipeline.
        self._once_turn: TurnBatch[list[str], list[int] | None] = TurnBatch(self._enqueue_once_turn)
        scripts = {
            "enqueue": _ENQUEUE,
            "claim": _CLAIM,
            "renew": _RENEW,
            "unclaim": _UNCLAIM,
            "ack": _ACK,
            "release": _RELEASE,
            "dead": _DEAD,
            "requeue": _REQUEUE,
            "discard": _DISCARD,
            "replace": _REPLACE,
            "settle": _SETTLE,
            "recover": _RECOVER_ALL,
            "purge": _PURGE_SENT,
        }
        groups = {
            "open_group": _OPEN_GROUP,
            "arm_group": _ARM_GROUP,
            "ack_group": _ACK_GROUP,
            "resolve_group": _RESOLVE_GROUP,
            "read_groups": _READ_GROUPS,
            "claim_timers": _CLAIM_TIMERS,
            "fire_timer": _FIRE_TIMER,
            "purge_groups": _PURGE_GROUPS,
            "trim_groups": _TRIM_GROUPS,
        }
        scripts.update({name: _GROUP_LIB + body for name, body in groups.items()})
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(_LIB + body) for name, body in scripts.items()
        }

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock = time.time, server_leases: bool = True
    ) -> RedisOutbox:
        """Build from ``redis://[:password@]host:port/db[?prefix=...]`` (or ``rediss://``).

        Connecting is lazy; ``await store.ping()`` checks the server.

        Raises:
            StoreOpenError: the URL is malformed.
        """
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        prefix = query.pop("prefix", DEFAULT_PREFIX)
        location = mask_url(urlunsplit(parts._replace(query="")))
        try:
            client = aioredis.Redis.from_url(
                urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items()))),
                decode_responses=True,
                socket_connect_timeout=5,
                socket_timeout=10,
            )
        except (ValueError, RedisError) as exc:
            raise StoreOpenError(
                f"store: {location!r} is not a valid Redis URL ({exc}); expected "
                "redis://host:port/db"
            ) from None
        return cls(
            client, prefix=prefix, location=location, clock=clock, server_leases=server_leases
        )

    # -- plumbing -----------------------------------------------------------------------------
    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        if self._closed:
            raise StoreUnavailableError(f"outbox {self.location} is closed")
        try:
            yield
        except RedisError as exc:
            raise StoreUnavailableError(
                f"outbox {self.location}: Redis failed ({type(exc).__name__}: {exc}); "
                "nothing of this call may be assumed stored"
            ) from exc

    async def _script(self, name: str, *args: Any) -> Any:
        async with self._guard():
            return await self._scripts[name](keys=[], args=[self.prefix, *args])

    def _key(self, kind: str, bot: str) -> str:
        return f"{self.prefix}{kind}:{bot}"

    async def _bots(self) -> list[str]:
        async with self._guard():
            members = await cast(Any, self.client.smembers(f"{self.prefix}bots"))
        return sorted(members)

    async def _fetch(self, ids: Sequence[int]) -> list[OutboxRecord]:
        if not ids:
            return []
        async with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for record_id in ids:
                pipe.hgetall(f"{self.prefix}rec:{record_id}")
            rows = await pipe.execute()
        return [_record(row) for row in rows if row]

    async def _per_bot(
        self, command: str, kind: str, bots: Sequence[str], *args: Any, **kwargs: Any
    ) -> list[Any]:
        """Run one read command on the ``kind`` key of every bot, in one round trip."""
        async with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for bot in bots:
                getattr(pipe, command)(self._key(kind, bot), *args, **kwargs)
            return await pipe.execute()

    # -- writing ---------------------------------------------------------------------------
    async def _enqueue(
        self, messages: Sequence[NewMessage], now: float, dedup: tuple[str, float] | None
    ) -> list[int] | None:
        args: list[str] = [_t(now)]
        args += [dedup[0], _t(now + dedup[1])] if dedup else ["", ""]
        for message in messages:
            args += _pending_args(message, now)
        result = await self._script("enqueue", *args)
        if int(result[0]) == 0:
            return None
        return [int(i) for i in result[1:]]

    async def enqueue(
        self, messages: Sequence[NewMessage], *, now: float | None = None
    ) -> list[int]:
        return cast(list[int], await self._enqueue(messages, self._now(now), None))

    async def enqueue_once(
        self,
        dedup_key: str,
        window_seconds: float,
        messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int] | None:
        if not dedup_key:
            raise ValueError("enqueue_once needs a non-empty dedup key")
        if self._closed:
            raise StoreUnavailableError(f"outbox {self.location} is closed")
        stamp = self._now(now)
        args: list[str] = [_t(stamp), dedup_key, _t(stamp + window_seconds)]
        for message in messages:
            args += _pending_args(message, stamp)
        # The request path: calls made in one turn of the loop share one round trip (each
        # script stays atomic on its own), instead of a connection and a round trip each.
        return await self._once_turn.add(args)

    async def _enqueue_once_turn(
        self, calls: list[list[str]]
    ) -> list[list[int] | None | BaseException]:
        script = self._scripts["enqueue"]
        async with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for args in calls:
                await script(keys=[], args=[self.prefix, *args], client=pipe)
            results = await pipe.execute(raise_on_error=False)
        answers: list[list[int] | None | BaseException] = []
        for result in results:
            if isinstance(result, BaseException):
                answers.append(
                    StoreUnavailableError(
                        f"outbox {self.location}: Redis failed ({type(result).__name__}: "
                        f"{result}); nothing of this call may be assumed stored"
                    )
                )
            else:
                answers.append(None if int(result[0]) == 0 else [int(i) for i in result[1:]])
        return answers

    async def replace(
        self,
        claimed_ids: Sequence[int],
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[OutboxRecord]:
        check_replace(claimed_ids, new_messages)
        wanted = list(dict.fromkeys(claimed_ids))
        args: list[str] = [_t(self._now(now)), str(len(wanted)), *map(str, wanted)]
        for message in new_messages:
            args += _message_args(message, message.encoded())
            args.append(message.notification_id or "")
        result = await self._script("replace", *args)
        if result[0] == "lost":
            raise LeaseLostError([int(i) for i in result[1:]])
        return [_record(_pairs(flat)) for flat in result[1:]]

    async def settle(
        self,
        claimed_id: int,
        new_messages: Sequence[NewMessage],
        *,
        now: float | None = None,
    ) -> list[int]:
        t = self._now(now)
        args: list[str] = [_t(t), str(claimed_id)]
        for message in new_messages:
            args += _pending_args(message, t)
        result = await self._script("settle", *args)
        if int(result[0]) == 0:
            raise LeaseLostError([claimed_id])
        return [int(i) for i in result[1:]]

    # -- the dispatcher's side -------------------------------------------------------------
    async def claim(
        self, bot: str, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[OutboxRecord]:
        if limit < 1 or lease_seconds <= 0:
            raise ValueError("claim needs limit >= 1 and lease_seconds > 0")
        t = self._now(now)
        rows = await self._script(
            "claim", bot, _t(t), str(limit), _t(lease_seconds), LEASE_EXPIRED_ERROR,
            self._lease_now(t),
        )  # fmt: skip
        return [_record(_pairs(flat)) for flat in rows]

    async def renew(
        self, ids: Sequence[int], *, lease_seconds: float, now: float | None = None
    ) -> int:
        if lease_seconds <= 0:
            raise ValueError("renew needs lease_seconds > 0")
        t = self._now(now)
        return int(
            await self._script(
                "renew", _t(t), _t(lease_seconds), self._lease_now(t), *map(str, set(ids))
            )
        )

    def _lease_now(self, now: float) -> str:
        """The time leases are measured from: ``""`` lets the scripts read Redis ``TIME``."""
        return "" if self.server_leases else _t(now)

    async def unclaim(self, ids: Sequence[int], *, now: float | None = None) -> int:
        return int(await self._script("unclaim", _t(self._now(now)), *map(str, set(ids))))

    async def ack(self, ids: Sequence[int], *, now: float | None = None) -> int:
        return int(await self._script("ack", _t(self._now(now)), *map(str, set(ids))))

    async def release(
        self,
        record_id: int,
        *,
        next_attempt_at: float,
        error: str,
        now: float | None = None,
    ) -> bool:
        changed = await self._script(
            "release", str(record_id), _t(next_attempt_at), cut_error(error), _t(self._now(now))
        )
        return bool(changed)

    async def dead(self, record_id: int, error: str, *, now: float | None = None) -> bool:
        changed = await self._script("dead", str(record_id), cut_error(error), _t(self._now(now)))
        return bool(changed)

    # -- dead letters ------------------------------------------------------------------------
    async def requeue_dead(self, ids: Sequence[int], *, now: float | None = None) -> int:
        return int(await self._script("requeue", _t(self._now(now)), *map(str, set(ids))))

    async def discard_dead(self, ids: Sequence[int]) -> int:
        return int(await self._script("discard", *map(str, set(ids))))

    async def list_dead(self, bot: str | None = None, *, limit: int = 100) -> list[OutboxRecord]:
        bots = [bot] if bot is not None else await self._bots()
        found = await self._per_bot("zrange", "dead", bots, 0, limit - 1)
        ids = sorted(int(m) for members in found for m in members)[:limit]
        return await self._fetch(ids)

    # -- reading -----------------------------------------------------------------------------
    async def get(self, record_id: int) -> OutboxRecord | None:
        found = await self._fetch([record_id])
        return found[0] if found else None

    async def find_by_notification(self, notification_id: str) -> list[OutboxRecord]:
        async with self._guard():
            members = await cast(Any, self.client.smembers(f"{self.prefix}notif:{notification_id}"))
        return await self._fetch(sorted(int(m) for m in members))

    async def delivery_states(self, notification_id: str) -> list[OutboxRecord]:
        # History asks this for every notification a digest folded: read no payloads and no
        # id lists (a digest's is thousands long), only the fields that say where it is.
        async with self._guard():
            members = await cast(Any, self.client.smembers(f"{self.prefix}notif:{notification_id}"))
            if not members:
                return []
            pipe = self.client.pipeline(transaction=False)
            for record_id in sorted(int(m) for m in members):
                pipe.hmget(f"{self.prefix}rec:{record_id}", *_STATE_FIELDS)
            rows = await pipe.execute()
        return [_state_record(row) for row in rows if row[0] is not None]

    async def _cards(self, kind: str, bot: str | None) -> dict[str, int]:
        bots = [bot] if bot is not None else await self._bots()
        counts = await self._per_bot("zcard", kind, bots)
        return {b: int(c) for b, c in zip(bots, counts, strict=True)}

    async def pending_count(self, bot: str | None = None) -> int:
        return sum((await self._cards("age", bot)).values())

    async def dead_count(self, bot: str | None = None) -> int:
        return sum((await self._cards("dead", bot)).values())

    async def depth_by_bot(self) -> dict[str, int]:
        return {b: c for b, c in (await self._cards("age", None)).items() if c}

    async def _first_scores(self, kind: str, bots: Sequence[str]) -> list[float | None]:
        found = await self._per_bot("zrange", kind, bots, 0, 0, withscores=True)
        return [float(entries[0][1]) if entries else None for entries in found]

    async def oldest_pending_age(self, bot: str, *, now: float | None = None) -> float | None:
        t = self._now(now)
        [oldest] = await self._first_scores("age", [bot])
        return None if oldest is None else t - oldest

    async def bots_with_due_work(self, *, now: float | None = None) -> list[str]:
        t = self._now(now)
        bots = await self._bots()
        pending = await self._first_scores("pend", bots)
        leased = await self._first_scores("leased", bots)
        return [
            b
            for b, p, le in zip(bots, pending, leased, strict=True)
            if (p is not None and p <= t) or (le is not None and le <= t)
        ]

    async def next_due_at(self, bot: str | None = None) -> float | None:
        bots = [bot] if bot is not None else await self._bots()
        times = [
            x
            for x in (
                *await self._first_scores("pend", bots),
                *await self._first_scores("leased", bots),
            )
            if x is not None
        ]
        return min(times) if times else None

    # -- the send log --------------------------------------------------------------------------
    # Kept even though the gateway on Redis shares its window through RedisWindowLimiter and
    # never reads it: every backend honours the whole contract.
    async def note_send(
        self, key_id: str, at: float, *, keep: float, rejected: bool = False
    ) -> None:
        key = f"{self.prefix}sends:{key_id}"
        member = f"{_t(at)}|{'r' if rejected else 's'}|{os.urandom(6).hex()}"
        async with self._guard():
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(key, {member: at})
            pipe.zremrangebyscore(key, "-inf", f"({_t(at - keep)}")
            pipe.pexpire(key, math.ceil(keep * 1000) + 1000)
            await pipe.execute()

    async def recent_sends(self, key_id: str, since: float) -> list[SendMark]:
        async with self._guard():
            rows = await cast(
                Any,
                self.client.zrangebyscore(
                    f"{self.prefix}sends:{key_id}", _t(since), "+inf", withscores=True
                ),
            )
        return [SendMark(float(score), member.split("|")[1] == "r") for member, score in rows]

    # -- alert groups and their timers ----------------------------------------------------------
    async def open_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        now: float | None = None,
    ) -> bool:
        check_timers(group_id, timers)
        args = [group_id, _t(self._now(now)), encode_json(info, "group info")]
        for timer in timers:
            args += [timer.key, _t(timer.due_at), encode_json(timer.payload, "timer payload")]
        return bool(await self._script("open_group", *args))

    async def arm_group(
        self,
        group_id: str,
        info: Mapping[str, Any],
        timers: Sequence[NewTimer],
        *,
        resumed: Sequence[NewMessage] = (),
        only_new: bool = False,
        now: float | None = None,
    ) -> tuple[Armed, list[int]]:
        check_timers(group_id, timers)
        t = self._now(now)
        args = [
            group_id, _t(t), encode_json(info, "group info"), "1" if only_new else "0",
            str(len(timers)),
        ]  # fmt: skip
        for timer in timers:
            args += [timer.key, _t(timer.due_at), encode_json(timer.payload, "timer payload")]
        for message in resumed:
            args += _pending_args(message, t)
        result = await self._script("arm_group", *args)
        return Armed(int(result[0])), [int(i) for i in result[1:]]

    async def acknowledge_group(
        self,
        group_id: str,
        *,
        by: str,
        silenced_until: float | None = None,
        now: float | None = None,
    ) -> Acknowledged:
        until = "" if silenced_until is None else _t(silenced_until)
        found = await self._script("ack_group", group_id, by, until, _t(self._now(now)))
        return Acknowledged(int(found))

    async def resolve_group(self, group_id: str) -> bool:
        return bool(await self._script("resolve_group", group_id))

    async def get_group(self, group_id: str) -> GroupRecord | None:
        rows = await self._script("read_groups", "ids", "", group_id)
        return _group(rows[0]) if rows else None

    async def list_groups(self, *, limit: int = 500) -> list[GroupRecord]:
        if limit <= 0:
            return []
        return [_group(row) for row in await self._script("read_groups", "list", str(limit))]

    async def claim_timers(
        self, *, limit: int, lease_seconds: float, now: float | None = None
    ) -> list[TimerRecord]:
        check_claim_arguments(limit, lease_seconds)
        t = self._now(now)
        rows = await self._script(
            "claim_timers", _t(t), str(limit), _t(t + lease_seconds), os.urandom(8).hex()
        )
        timers = [_timer(_pairs(row)) for row in rows]
        return sorted(timers, key=lambda tm: (tm.due_at, tm.group_id, tm.key))

    async def fire_timer(
        self,
        timer: TimerRecord,
        messages: Sequence[NewMessage],
        *,
        next_due_at: float | None = None,
        now: float | None = None,
    ) -> list[int]:
        t = self._now(now)
        args = [
            _t(t), timer.group_id, timer.key, timer.claim or "",
            "" if next_due_at is None else _t(next_due_at),
        ]  # fmt: skip
        for message in messages:
            args += _pending_args(message, t)
        result = await self._script("fire_timer", *args)
        if not result[0]:
            raise TimerLostError(timer.group_id, timer.key)
        return [int(i) for i in result[1:]]

    async def next_timer_at(self) -> float | None:
        async with self._guard():
            first = await self.client.zrange(f"{self.prefix}tm-due", 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def purge_groups(self, *, before: float, now: float | None = None) -> int:
        return int(await self._script("purge_groups", _t(before), _t(self._now(now))))

    async def trim_groups(self, *, keep: int) -> int:
        check_keep(keep)
        return int(await self._script("trim_groups", str(keep)))

    # -- maintenance -------------------------------------------------------------------------
    async def recover_expired_leases(self, *, now: float | None = None) -> int:
        t = self._now(now)
        return int(await self._script("recover", _t(t), LEASE_EXPIRED_ERROR, self._lease_now(t)))

    async def purge_sent(self, *, before: float) -> int:
        return int(await self._script("purge", _t(before)))

    async def ping(self) -> None:
        async with self._guard():
            await cast(Any, self.client.ping())

    async def check_identity(self, *, repair: bool = False) -> str | None:
        key = f"{self.prefix}epoch"
        async with self._guard():
            current = cast("str | None", await self.client.get(key))
            missing = current is None
            if self._epoch is None or (repair and missing):
                fresh = f"{time.time():.0f}-{os.urandom(8).hex()}"
                await self.client.set(key, fresh, nx=True)
                current = cast("str | None", await self.client.get(key))
            if self._epoch is None:
                self._epoch = current
                return None
        if current == self._epoch:
            return None
        # Changed rather than gone: another instance saw the loss first and wrote a new one.
        how = "its epoch key is gone" if missing else "its epoch key changed"
        message = (
            f"Redis at {self.location} lost its data while the gateway ran ({how}: it restarted "
            "without persistence, was flushed, or failed over to an empty replica): the "
            "messages queued there before are gone, without dead letters. Turn on appendonly "
            "yes; check the alerts of the last minutes in Alertmanager"
        )
        if repair:
            self._epoch = current  # the data set from now on: one incident, reported once
            return message + "; the gateway goes on with the Redis as it is now"
        return message

    async def durability_warning(self) -> str | None:
        async with self._guard():
            try:
                appendonly = await self.client.config_get("appendonly")
                save = await self.client.config_get("save")
            except ResponseError as exc:  # CONFIG renamed away or not granted by an ACL
                return (
                    f"cannot check the persistence of Redis at {self.location} (CONFIG GET "
                    f"refused: {' '.join(str(exc).split())[:120]}); make sure it runs with "
                    "appendonly yes, or a Redis restart loses the queued alerts"
                )
        if str(appendonly.get("appendonly", "")).lower() == "yes":
            return None
        if str(save.get("save", "")).strip():
            return (
                f"Redis at {self.location} has appendonly no (only RDB snapshots, save "
                f"{save['save']!r}): a Redis restart loses the alerts accepted since the last "
                "snapshot. Run it with appendonly yes"
            )
        return (
            f"Redis at {self.location} has persistence off (appendonly no, no save): a Redis "
            "restart loses every queued alert. Run it with appendonly yes"
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.client.aclose()


# -- the shared rate limiter --------------------------------------------------------------------

# KEYS: sends zset, block key. ARGV: now ("" = Redis TIME), limit, window, mode, member, ttl ms,
# and for mode "late" the seconds since the send's slot was taken and how much later than now
# the send may still be processed.
# A send at t occupies [t, t + window), as in wecom_bot.ratelimit.SlidingWindowLimiter.
_WINDOW: Final = r"""
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local limit, window, mode = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local stamp = string.format('%.17g', now)
-- Marks over a window ahead of now mean the clock stepped back (a send that got no answer
-- is marked at most a window ahead): they count from now, instead of holding the key until
-- the clock reaches them again.
local ahead = string.format('%.17g', now + window)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ahead, '+inf')) do
  redis.call('ZADD', KEYS[1], stamp, m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local wait = 0
local blocked = redis.call('GET', KEYS[2])
if blocked and tonumber(blocked) > now + window then
  blocked = string.format('%.17g', now + window)
  redis.call('SET', KEYS[2], blocked, 'PX', math.ceil(window * 1000) + 1000)
end
if blocked then wait = math.max(wait, tonumber(blocked) - now) end
if mode == 'reject' then
  local untill = now + window
  if blocked and tonumber(blocked) > untill then untill = tonumber(blocked) end
  local px = math.max(tonumber(ARGV[6]), math.ceil((untill - now) * 1000) + 1000)
  redis.call('SET', KEYS[2], string.format('%.17g', untill), 'PX', px)
  return string.format('%.17g', untill - now)
end
if mode == 'late' then
  -- The send's mark moves to now: the server may have processed it any time until now.
  local taken = now - tonumber(ARGV[7])
  local tolerance = math.max(0.05, window * 0.01)
  local near = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%.17g', taken - tolerance),
                          string.format('%.17g', taken + tolerance), 'WITHSCORES')
  local best, distance = nil, nil
  for i = 1, #near, 2 do
    local d = math.abs(tonumber(near[i + 1]) - taken)
    if distance == nil or d < distance then best, distance = near[i], d end
  end
  if best then redis.call('ZREM', KEYS[1], best) end
  local later = math.min(math.max(tonumber(ARGV[8]), 0), window)
  redis.call('ZADD', KEYS[1], string.format('%.17g', now + later), ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return '0'
end
local count = redis.call('ZCARD', KEYS[1])
if mode == 'used' then return tostring(count) end
if count >= limit then
  local nth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  wait = math.max(wait, tonumber(nth[2]) + window - now)
end
if wait > 0 or mode == 'peek' then return string.format('%.17g', wait) end
redis.call('ZADD', KEYS[1], string.format('%.17g', now), ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return '0'
"""


class RedisWindowLimiter:
    """A sliding-window limiter shared by every process that uses the same Redis.

    The same rule as :class:`wecom_bot.ratelimit.SlidingWindowLimiter` (never more than
    ``limit`` sends in any ``window`` seconds per key), but the window lives in Redis and is
    checked and updated by one Lua script, so several gateway instances together stay under
    WeCom's 20 messages per minute per robot. When the clock it runs on steps back, sends and
    blocks recorded later than "now" count from now for one window at most, so the key waits
    at most a window (not the size of the step).

    Args:
        client: a ``redis.asyncio.Redis`` created with ``decode_responses=True`` (not closed
            by the limiter).
        rate: the allowed rate (default 20 per 60 s), or a string such as ``"20/1s"``.
        prefix: prepended to every key.
        clock: the time source; ``None`` (the default) uses the Redis server's clock, so the
            instances agree on the time even when their own clocks drift apart.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        rate: Rate | str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.rate = parse_rate(rate) if isinstance(rate, str) else (rate or Rate())
        self.prefix = prefix
        self.clock = clock
        self._script = client.register_script(_WINDOW)
        self._ttl_ms = str(math.ceil(self.rate.window * 1000) + 1000)

    def _keys(self, key_id: str) -> list[str]:
        # Hashed, so that a webhook key passed by mistake never lands in Redis.
        digest = hashlib.sha256(key_id.encode("utf-8")).hexdigest()[:24]
        return [f"{self.prefix}rl:{digest}", f"{self.prefix}rl:{digest}:blocked"]

    async def _run(self, key_id: str, mode: str, after: float = 0.0, later: float = 0.0) -> float:
        now = "" if self.clock is None else _t(self.clock())
        try:
            answer = await self._script(
                keys=self._keys(key_id),
                args=[
                    now,
                    str(self.rate.limit),
                    _t(self.rate.window),
                    mode,
                    os.urandom(8).hex(),
                    self._ttl_ms,
                    _t(after),
                    _t(later),
                ],
            )
        except RedisError as exc:
            raise StoreUnavailableError(
                f"rate limiter: Redis failed ({type(exc).__name__}: {exc})"
            ) from exc
        return float(answer)

    async def try_acquire(self, key_id: str) -> float:
        """Take a send slot for ``key_id`` if one is free now.

        Args:
            key_id: an identifier of one robot (its key fingerprint or bot name; it is hashed).

        Returns:
            ``0.0`` when a slot was taken (send now); otherwise the seconds until one frees,
            and nothing was taken.

        Raises:
            StoreUnavailableError: Redis did not answer.
        """
        return await self._run(key_id, "acquire")

    async def wait_time(self, key_id: str) -> float:
        """Seconds until a send for ``key_id`` would be allowed (``0.0``: now); takes nothing."""
        return await self._run(key_id, "peek")

    async def used(self, key_id: str) -> int:
        """Sends recorded for ``key_id`` in the current window, by every instance."""
        return int(await self._run(key_id, "used"))

    async def answered(self, key_id: str, after: float, *, later: float = 0.0) -> None:
        """The send whose slot was taken ``after`` seconds ago got its answer only now, or none:
        its mark moves to now (``later`` seconds after now for a send that got no answer), for
        every instance (the server counts it when it processes it). Answers within
        :data:`~wecom_bot.ratelimit.SLOW_ANSWER` of the window leave it."""
        if after > SLOW_ANSWER * self.rate.window or later > 0:
            await self._run(key_id, "late", after, later)

    async def record_rejection(self, key_id: str) -> float:
        """The server answered 45009: block ``key_id`` for one window, for every instance.

        Returns:
            The seconds the key is blocked from now.
        """
        return await self._run(key_id, "reject")
