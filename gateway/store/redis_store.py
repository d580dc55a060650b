"""The Redis backend: several gateway instances share one Redis, through redis-py's asyncio client.

Every read-modify-write of a case is one Lua script, so it is atomic against the other instances
without locks or retries. Keys live under ``<prefix>:`` (one Redis database may serve several
gateways with different prefixes); the scripts name keys from that prefix, so this backend targets
a single Redis server (or a primary with replicas), not Redis Cluster.

Cases are JSON documents (``case:<id>``) whose times are strings (Python's repr of the float): Lua's
JSON encoder keeps only 14 significant digits, a tenth of a millisecond for an epoch time, while a
string goes through untouched and compares exactly once read as a double. Two sorted sets index
the case ids: ``due`` by due time and ``ready`` by the later of due time and lease expiry. Claiming
reads ``ready``, so a case leased to a live instance is not even looked at until its lease lapses,
whatever the number of leased cases.

Registrations carry their lapse time on the caller's clock, as everything here does, so Redis's own
key expiry (on Redis's clock) cannot retire them: a third sorted set, ``reg_expiry``, indexes every
contact by the time it lapses, written in the same script as the contact, and
``expire_registrations`` deletes what lapsed in one script too, so a contact refreshed through
another instance a moment before is kept, and one deleted is gone for all. Instruction references
(``ref:<reference>``) hold their end time as their value, which decides; they also expire in Redis
after the same span, so that the store does not grow with every reference ever received.

The synchronous hot-path calls (``remember_message``, ``audit``) answer from an in-process map and
write through to Redis in the background, batched: the proxies never wait for the network. A
receipt is normally routed by the instance that submitted its message (the SMSC answers on the
bind it came from); ``route_owner`` asks Redis for ids another instance remembered.

Rule velocity counters live in the same Redis under the same prefix, kept by
gateway/store/redis_velocity.py on this store's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from gateway.logs import get_logger
from gateway.store.base import (
    CASE_STATES,
    DEFAULT_SESSIONS_PER_OPERATOR,
    DESK_ACTIONS,
    OPEN,
    AuditRecord,
    CampaignCopy,
    CampaignPolicy,
    CampaignSeen,
    Case,
    Cluster,
    ConsoleSession,
    LeaseLost,
    Registration,
    RiskScore,
    UnknownCase,
    campaign_seen,
    canonical_message_id,
    check_tier,
    message_id_keys,
    new_case,
)
from gateway.store.batch import TurnBatcher
from gateway.store.memory import MemoryStore
from gateway.tasks import cancel_and_wait

log = get_logger("afgw.store")

#: Redis lets an expiring key live for a whole number of milliseconds, at least one.
_MIN_HOLD_MS = 1

_OPEN_OR_UPDATE = """
local p, sub, tier, ftype, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local tiers = {low = 1, medium = 2, high = 3}
local id = redis.call('GET', p .. 'open:' .. sub)
if id then
  local key = p .. 'case:' .. id
  local doc = cjson.decode(redis.call('GET', key))
  if tiers[tier] > tiers[doc.tier] then doc.tier = tier end
  local types = doc.fraud_types
  if type(types) ~= 'table' then types = {} end
  local seen = false
  for _, t in ipairs(types) do if t == ftype then seen = true end end
  if ftype ~= '' and not seen then table.insert(types, ftype) end
  doc.fraud_types = types
  local family = doc.family
  if type(family) ~= 'table' then family = {} end
  for _, f in ipairs(cjson.decode(ARGV[7])) do
    local known = false
    for _, g in ipairs(family) do if g == f then known = true end end
    if not known then table.insert(family, f) end
  end
  doc.family = family
  table.insert(doc.transitions, {'updated', now, tier})
  local out = cjson.encode(doc)
  redis.call('SET', key, out)
  return {0, out}
end
id = tostring(redis.call('INCR', p .. 'case_id'))
local doc = cjson.decode(ARGV[6])
doc.id = id
local out = cjson.encode(doc)
redis.call('SET', p .. 'case:' .. id, out)
redis.call('SET', p .. 'open:' .. sub, id)
redis.call('SADD', p .. 'open_cases', id)
redis.call('ZADD', p .. 'due', doc.due_at, id)
redis.call('ZADD', p .. 'ready', doc.due_at, id)
return {1, out}
"""

_CLAIM = """
local p, inst, now_s, untl, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = tonumber(now_s)
local ids = redis.call('ZRANGEBYSCORE', p .. 'ready', '-inf', now_s, 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  local key = p .. 'case:' .. id
  local raw = redis.call('GET', key)
  if raw then
    local doc = cjson.decode(raw)
    local until_ = tonumber(doc.lease_until) or 0
    if doc.state == 'open' and (doc.lease_holder == '' or doc.lease_holder == inst or until_ <= now) then
      doc.lease_holder = inst
      doc.lease_until = untl
      table.insert(doc.transitions, {'claimed', now_s, inst})
      local enc = cjson.encode(doc)
      redis.call('SET', key, enc)
      redis.call('ZADD', p .. 'ready', untl, id)
      table.insert(out, enc)
    end
  else
    redis.call('ZREM', p .. 'ready', id)
  end
end
return out
"""

_ATTEMPTS = """
-- ARGV: prefix, then (case id, instance, now, next due or '', detail) for each attempt; two answers each.
local p = ARGV[1]
local out = {}
for k = 2, #ARGV, 5 do
  local id, inst, now, nxt, detail = ARGV[k], ARGV[k + 1], ARGV[k + 2], ARGV[k + 3], ARGV[k + 4]
  local key = p .. 'case:' .. id
  local raw = redis.call('GET', key)
  local doc = raw and cjson.decode(raw)
  if not raw then
    table.insert(out, 'err'); table.insert(out, 'unknown')
  elseif doc.state ~= 'open' or doc.lease_holder ~= inst then
    table.insert(out, 'err'); table.insert(out, 'lease')
  else
    doc.attempts = doc.attempts + 1
    doc.lease_holder = ''
    doc.lease_until = 0
    local said = tostring(doc.attempts)
    if detail ~= '' then said = said .. ' ' .. detail end
    table.insert(doc.transitions, {'attempt', now, said})
    if nxt == '' then
      doc.due_at = cjson.null
      redis.call('ZREM', p .. 'due', id)
      redis.call('ZREM', p .. 'ready', id)
    else
      doc.due_at = nxt
      redis.call('ZADD', p .. 'due', doc.due_at, id)
      redis.call('ZADD', p .. 'ready', doc.due_at, id)
    end
    local enc = cjson.encode(doc)
    redis.call('SET', key, enc)
    table.insert(out, 'ok'); table.insert(out, enc)
  end
end
return out
"""

_MOVE = """
local p, id, state, now_s, inst, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = tonumber(now_s)
local key = p .. 'case:' .. id
local raw = redis.call('GET', key)
if not raw then return {'err', 'unknown'} end
local doc = cjson.decode(raw)
if doc.state ~= 'open' then return {'err', 'state:' .. doc.state} end
local until_ = tonumber(doc.lease_until) or 0
if inst ~= '' and doc.lease_holder ~= '' and doc.lease_holder ~= inst and until_ > now then
  return {'err', 'lease'}
end
doc.state = state
doc.due_at = cjson.null
doc.lease_holder = ''
doc.lease_until = 0
table.insert(doc.transitions, {state, now_s, detail})
local enc = cjson.encode(doc)
redis.call('SET', key, enc)
redis.call('ZREM', p .. 'due', id)
redis.call('ZREM', p .. 'ready', id)
redis.call('SREM', p .. 'open_cases', id)
if redis.call('GET', p .. 'open:' .. doc.subscriber) == id then redis.call('DEL', p .. 'open:' .. doc.subscriber) end
return {'ok', enc}
"""

# A person's step (base.desk_case says what each may do); the holder is the first word of the last claim.
_DESK = """
local p, id, action, now_s, operator, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = p .. 'case:' .. id
local raw = redis.call('GET', key)
if not raw then return {'err', 'unknown'} end
local doc = cjson.decode(raw)
if doc.state ~= 'open' and doc.state ~= 'escalated' then return {'err', 'state:' .. doc.state} end
if type(doc.transitions) ~= 'table' then doc.transitions = {} end
local holder = ''
for _, t in ipairs(doc.transitions) do
  if t[1] == 'desk_claim' then holder = string.match(t[3], '^(%S*)') end
end
if action == 'desk_claim' and holder ~= '' and holder ~= operator then return {'err', 'claimed:' .. holder} end
local said = operator
if detail ~= '' then said = operator .. ' ' .. detail end
table.insert(doc.transitions, {action, now_s, said})
if action == 'closed' then
  doc.state = 'closed'
  doc.due_at = cjson.null
  doc.lease_holder = ''
  doc.lease_until = 0
  redis.call('ZREM', p .. 'due', id)
  redis.call('ZREM', p .. 'ready', id)
  redis.call('SREM', p .. 'open_cases', id)
  if redis.call('GET', p .. 'open:' .. doc.subscriber) == id then redis.call('DEL', p .. 'open:' .. doc.subscriber) end
end
local enc = cjson.encode(doc)
redis.call('SET', key, enc)
return {'ok', enc}
"""

_NOTES = """
-- ARGV: prefix, then (case id, event, now, detail, instance, once, late) for each note; two answers each.
-- A late fact (base.noted_case) goes on a case in any state, but never under a lease.
local p = ARGV[1]
local out = {}
for k = 2, #ARGV, 7 do
  local id, event, now, detail, inst, once = ARGV[k], ARGV[k + 1], ARGV[k + 2], ARGV[k + 3], ARGV[k + 4], ARGV[k + 5]
  local late = ARGV[k + 6] == '1' and inst == ''
  local key = p .. 'case:' .. id
  local raw = redis.call('GET', key)
  local doc = raw and cjson.decode(raw)
  local seen = false
  if doc and type(doc.transitions) ~= 'table' then doc.transitions = {} end
  if doc and once == '1' then
    for _, t in ipairs(doc.transitions) do
      if t[1] == event then seen = true end
    end
  end
  if not raw then
    table.insert(out, 'err'); table.insert(out, 'unknown')
  elseif doc.state ~= 'open' and not late then
    table.insert(out, 'err'); table.insert(out, 'state:' .. doc.state)
  elseif inst ~= '' and doc.lease_holder ~= inst then
    table.insert(out, 'err'); table.insert(out, 'lease')
  elseif seen then
    table.insert(out, 'none'); table.insert(out, '')
  else
    table.insert(doc.transitions, {event, now, detail})
    local enc = cjson.encode(doc)
    redis.call('SET', key, enc)
    table.insert(out, 'ok'); table.insert(out, enc)
  end
end
return out
"""

# Failures of a key (a console login) within a window: a sorted set of their times, members made
# unique by a counter. The times are the callers' clock; the key also expires in Redis after the window
# (on Redis's clock, which only tidies up), so keys that stop failing do not stay.
_FAILURES = """
-- ARGV: prefix, key, now, the window's start (now - window, reckoned exactly by the caller), its length
-- in milliseconds, how many to keep (0: only count).
local p, key, now_s, since, window_ms, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local k = p .. 'failures:' .. key
redis.call('ZREMRANGEBYSCORE', k, '-inf', since)
if keep > 0 then
  redis.call('ZADD', k, now_s, now_s .. ':' .. redis.call('INCR', p .. 'failure_seq'))
  redis.call('ZREMRANGEBYRANK', k, 0, -(keep + 1))
  redis.call('PEXPIRE', k, window_ms)
end
return redis.call('ZCARD', k)
"""

# Console sessions: a hash per session (``session:<key>``, the key being the hash of the cookie) and
# ``sessions``, a sorted set of the keys by absolute end, which finds the lapsed ones and, beyond the
# limit, the ones ending first. Times are the callers' clock; the hash also expires in Redis at its end
# (on Redis's clock, which only tidies up).
_KEEP_SESSION = """
-- ARGV: prefix, key, now, limit, milliseconds to the end, per operator, then operator, role, csrf, account,
-- created_at, seen_at, expires_at. Every session is in the index and in its operator's (sessions_of:NAME),
-- both by its end.
local p, key, now_s, limit, hold_ms = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local per_operator, operator = tonumber(ARGV[6]), ARGV[7]
local index = p .. 'sessions'
local function drop(keys)
  for _, k in ipairs(keys) do
    local h = p .. 'session:' .. k
    local owner = redis.call('HGET', h, 'operator')
    if owner then redis.call('ZREM', p .. 'sessions_of:' .. owner, k) end
    redis.call('DEL', h)
  end
  if #keys > 0 then redis.call('ZREM', index, unpack(keys)) end
end
drop(redis.call('ZRANGEBYSCORE', index, '-inf', now_s))
local h = p .. 'session:' .. key
redis.call('DEL', h)
redis.call('HSET', h, 'operator', operator, 'role', ARGV[8], 'csrf', ARGV[9], 'account', ARGV[10],
  'created_at', ARGV[11], 'seen_at', ARGV[12], 'expires_at', ARGV[13])
redis.call('PEXPIRE', h, hold_ms)
redis.call('ZADD', index, ARGV[13], key)
local mine = p .. 'sessions_of:' .. operator
redis.call('ZREMRANGEBYSCORE', mine, '-inf', now_s)
redis.call('ZADD', mine, ARGV[13], key)
if redis.call('PTTL', mine) < tonumber(hold_ms) then redis.call('PEXPIRE', mine, hold_ms) end
-- sessions that ended unused (their hash expired, or was taken by the read that found them idle)
for _, k in ipairs(redis.call('ZRANGE', mine, 0, -1)) do
  if redis.call('EXISTS', p .. 'session:' .. k) == 0 then
    redis.call('ZREM', mine, k)
    redis.call('ZREM', index, k)
  end
end
local over = redis.call('ZCARD', mine) - per_operator
if over > 0 then drop(redis.call('ZRANGE', mine, 0, over - 1)) end
local extra = redis.call('ZCARD', index) - limit
if extra > 0 then drop(redis.call('ZRANGE', index, 0, extra - 1)) end
"""

_GET_SESSION = """
-- ARGV: prefix, key, now, the idle limit's start (now - idle, reckoned exactly by the caller), touch.
local p, key, now_s, since, touch = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = p .. 'session:' .. key
local f = redis.call('HMGET', h, 'operator', 'role', 'csrf', 'account', 'created_at', 'seen_at', 'expires_at')
if not f[1] then
  redis.call('ZREM', p .. 'sessions', key)
  return false
end
local now = tonumber(now_s)
if tonumber(f[7]) <= now or tonumber(f[6]) <= tonumber(since) then
  redis.call('DEL', h)
  redis.call('ZREM', p .. 'sessions', key)
  return false
end
if touch == '1' and now > tonumber(f[6]) then
  redis.call('HSET', h, 'seen_at', now_s)
  f[6] = now_s
end
return f
"""

# Registrations: one hash per address of record (contact -> JSON row), the set of addresses of
# record, and ``reg_expiry``, a sorted set of every contact by the time it lapses, member
# ``<byte length of aor>:<aor><contact>``. The three change together, in one script each.
_REG_MEMBER = """
local function member(aor, contact) return string.len(aor) .. ':' .. aor .. contact end
"""

_REGISTER = (
    _REG_MEMBER
    + """
local p, aor, contact, row, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', p .. 'reg:' .. aor, contact, row)
redis.call('SADD', p .. 'aors', aor)
redis.call('ZADD', p .. 'reg_expiry', expires, member(aor, contact))
"""
)

_UNREGISTER = (
    _REG_MEMBER
    + """
local p, aor, contact = ARGV[1], ARGV[2], ARGV[3]
redis.call('HDEL', p .. 'reg:' .. aor, contact)
redis.call('ZREM', p .. 'reg_expiry', member(aor, contact))
if redis.call('EXISTS', p .. 'reg:' .. aor) == 0 then redis.call('SREM', p .. 'aors', aor) end
"""
)

_EXPIRE_REGISTRATIONS = """
local p, now_s, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = tonumber(now_s)
local index = p .. 'reg_expiry'
local gone = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now_s, 'LIMIT', 0, limit)) do
  redis.call('ZREM', index, m)
  local colon = string.find(m, ':', 1, true)
  local n = tonumber(string.sub(m, 1, colon - 1))
  local aor, contact = string.sub(m, colon + 1, colon + n), string.sub(m, colon + n + 1)
  local hash = p .. 'reg:' .. aor
  local row = redis.call('HGET', hash, contact)
  if row then
    local expires = cjson.decode(row)[2]
    if tonumber(expires) <= now then
      redis.call('HDEL', hash, contact)
      gone = gone + 1
      if redis.call('EXISTS', hash) == 0 then redis.call('SREM', p .. 'aors', aor) end
    else
      redis.call('ZADD', index, expires, m)
    end
  end
end
return gone
"""

_CLAIM_REFERENCE = """
local key, now, untl, ms = KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3]
local held = redis.call('GET', key)
if held and tonumber(held) > now then return 0 end
redis.call('SET', key, untl, 'PX', ms)
return 1
"""

# PASSporT claims: ``ppt:<sha256 of the signed part>`` holds "<call-id>\t<stale time>"; a live claim of
# another call refuses them all, else every token is claimed (an own claim is kept as it is).
_CLAIM_PASSPORTS = """
local now, call_id = tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held then
    local tab = string.find(held, '\t', 1, true)
    if tab and string.sub(held, 1, tab - 1) ~= call_id and tonumber(string.sub(held, tab + 1)) > now then
      return 0
    end
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, call_id .. '\t' .. ARGV[2 + 2 * i - 1], 'PX', ARGV[2 + 2 * i], 'NX')
end
return 1
"""

# The receipt routes of one flush in one call: a pipeline of a SET each costs the client more than the
# relay step that made the route (redis-py packs and parses every command in Python).
_ROUTES = """
local key, ttl = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do redis.call('SET', key .. ARGV[i], ARGV[i + 1], 'EX', ttl) end
return 0
"""

#: The same, the ids and their values in one argument, each followed by a NUL (neither can hold one:
#: SMPP's C-Octet Strings end at theirs): an argument each cost the client more than the write.
_PACKED_ROUTES = """
local key, ttl, s = ARGV[1], ARGV[2], ARGV[3]
local pos = 1
while pos <= #s do
  local a = string.find(s, '\\0', pos, true)
  local b = string.find(s, '\\0', a + 1, true)
  redis.call('SET', key .. string.sub(s, pos, a - 1), string.sub(s, a + 1, b - 1), 'EX', ttl)
  pos = b + 1
end
return 0
"""

#: Risk scores of many subscribers (ARGV[2] on): "value<TAB>updated_at" per line back, an empty line
#: where there is none. One string back costs the client a fraction of what a reply element each does.
_GET_RISKS = """
local key, out = ARGV[1], {}
for i = 2, #ARGV do
  local got = redis.call('HMGET', key .. ARGV[i], 'value', 'updated_at')
  out[i - 1] = got[1] and (got[1] .. '\\t' .. got[2]) or ''
end
return table.concat(out, '\\n')
"""

_SET_RISKS = """
local key = ARGV[1]
for i = 2, #ARGV, 3 do redis.call('HSET', key .. ARGV[i], 'value', ARGV[i + 1], 'updated_at', ARGV[i + 2]) end
return 0
"""

_RELEASE = """
local p, id, inst = ARGV[1], ARGV[2], ARGV[3]
local key = p .. 'case:' .. id
local raw = redis.call('GET', key)
if not raw then return 0 end
local doc = cjson.decode(raw)
if doc.state ~= 'open' or doc.lease_holder ~= inst then return 0 end
doc.lease_holder = ''
doc.lease_until = 0
redis.call('SET', key, cjson.encode(doc))
if doc.due_at ~= cjson.null then redis.call('ZADD', p .. 'ready', doc.due_at, id) end
return 1
"""

# Campaign clusters: ``cluster:<id>`` a JSON document (times as exact strings, as for cases), ``clusters``
# a sorted set of ids by last sighting (the idle ones and, past the bound, the least recently seen are
# forgotten from its low end), ``cband:<band>`` the id of the cluster a band key finds. The same steps as
# gateway/store/base.py's pure functions, checked by the same conformance suite.
_CAMPAIGN = """
local p, copy = ARGV[1], cjson.decode(ARGV[2])
local window, k, sim = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local needs, maxc, now_s = ARGV[6] == '1', tonumber(ARGV[7]), ARGV[8]
local now = tonumber(now_s)
local function forget(id)
  local raw = redis.call('GET', p .. 'cluster:' .. id)
  if raw then
    for _, band in ipairs(cjson.decode(raw).bands) do
      if redis.call('GET', p .. 'cband:' .. band) == id then redis.call('DEL', p .. 'cband:' .. band) end
    end
    redis.call('DEL', p .. 'cluster:' .. id)
  end
  redis.call('ZREM', p .. 'clusters', id)
end
local idle_before = '(' .. string.format('%.17g', now - window)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'clusters', '-inf', idle_before)) do forget(id) end
local seen, ids = {}, {}
for _, band in ipairs(copy.bands) do
  local id = redis.call('GET', p .. 'cband:' .. band)
  if id and not seen[id] then seen[id] = true; table.insert(ids, id) end
end
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
local found, best = nil, -1
for _, id in ipairs(ids) do
  local raw = redis.call('GET', p .. 'cluster:' .. id)
  if raw then
    local doc = cjson.decode(raw)
    if now - tonumber(doc.last_at) <= window then
      local same = 0
      for i = 1, #copy.sketch, 8 do
        if string.sub(copy.sketch, i, i + 7) == string.sub(doc.sketch, i, i + 7) then same = same + 1 end
      end
      local score = same / (#copy.sketch / 8)
      if #doc.sketch == #copy.sketch and score >= sim and score > best then found, best = doc, score end
    end
  end
end
if not found then
  local count = redis.call('ZCARD', p .. 'clusters')
  while count >= maxc do
    forget(redis.call('ZRANGE', p .. 'clusters', 0, 0)[1])
    count = count - 1
  end
  local id = tostring(redis.call('INCR', p .. 'cluster_id'))
  found = {id = id, sketch = copy.sketch, bands = copy.bands, started_at = now_s, last_at = now_s,
           recipients = {}, copies = 0, category = '', opened_at = ''}
  for _, band in ipairs(copy.bands) do redis.call('SET', p .. 'cband:' .. band, id) end
end
if found.opened_at == '' and now - tonumber(found.started_at) > window then
  found.started_at, found.recipients, found.copies, found.category = now_s, {}, 0, ''
end
local recipients = found.recipients
if type(recipients) ~= 'table' then recipients = {} end
for _, key in ipairs(copy.recipients) do
  if #recipients >= k then break end
  local known = false
  for _, r in ipairs(recipients) do if r == key then known = true end end
  if not known then table.insert(recipients, key) end
end
found.recipients = recipients
if found.category == '' then found.category = copy.evidence end
local opens = found.opened_at == '' and #recipients >= k and (found.category ~= '' or not needs)
if now > tonumber(found.last_at) then found.last_at = now_s end
found.copies = found.copies + 1
if opens then found.opened_at = now_s end
local out = cjson.encode(found)
redis.call('SET', p .. 'cluster:' .. found.id, out)
redis.call('ZADD', p .. 'clusters', found.last_at, found.id)
return {opens and 1 or 0, out}
"""


def _reg_member(aor: str, contact: str) -> str:
    """``reg_expiry``'s member for a contact, as the scripts write it (Lua counts bytes)."""
    return f"{len(aor.encode())}:{aor}{contact}"


def _hold_ms(now: float, until: float) -> int:
    """How long Redis keeps a reference held until ``until`` on the caller's clock: the same span."""
    return max(_MIN_HOLD_MS, int((until - now) * 1000))


def _exact_times(doc: dict[str, Any]) -> dict[str, Any]:
    for key in ("opened_at", "due_at", "lease_until"):
        if isinstance(doc.get(key), float):
            doc[key] = repr(doc[key])
    doc["transitions"] = [[event, repr(at), detail] for event, at, detail in doc["transitions"]]
    return doc


#: ``json.dumps(..., ensure_ascii=False, default=str)`` without building an encoder per record: every
#: refused message writes one.
_AUDIT_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


class RedisStore:
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "afgw",
        ttl: float = 72 * 3600.0,
        max_entries: int = 1_000_000,
        max_audit: int = 100_000,
        max_pending: int = 100_000,
        max_connections: int = 16,
        client: aioredis.Redis | None = None,
        password: str | None = None,
    ) -> None:
        if client is None:
            # A blocking pool: a burst of calls waits for a free connection instead of failing. A
            # password given apart from the URL keeps the URL printable.
            extra = {"password": password} if password else {}
            pool = aioredis.BlockingConnectionPool.from_url(
                url, decode_responses=True, max_connections=max_connections, timeout=10, **extra
            )
            client = aioredis.Redis.from_pool(pool)
        self.redis: aioredis.Redis = client
        self.p = prefix + ":"
        self.ttl = ttl
        self.max_audit = max_audit
        self._local = MemoryStore(ttl=ttl, max_entries=max_entries, max_audit=1)
        self._pending: deque[tuple[str, Any, Any]] = deque(maxlen=max_pending)
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self.dropped = 0
        #: Background writes that failed (and were retried): Redis was away.
        self.write_errors = 0
        self._open_or_update = self.redis.register_script(_OPEN_OR_UPDATE)
        self._claim = self.redis.register_script(_CLAIM)
        self._attempts_script = self.redis.register_script(_ATTEMPTS)
        #: The attempts of one tick go to Redis in one script call, not one round trip each.
        self._attempts: TurnBatcher[tuple[str, str, str, str, str], Case] = TurnBatcher(self._record_attempts)
        self._move = self.redis.register_script(_MOVE)
        self._release = self.redis.register_script(_RELEASE)
        self._routes = self.redis.register_script(_ROUTES)
        self._packed_routes = self.redis.register_script(_PACKED_ROUTES)
        self._get_risks = self.redis.register_script(_GET_RISKS)
        self._set_risks = self.redis.register_script(_SET_RISKS)
        self._desk = self.redis.register_script(_DESK)
        self._notes_script = self.redis.register_script(_NOTES)
        self._notes: TurnBatcher[tuple[str, str, str, str, str, str, str], Case | None] = TurnBatcher(
            self._record_notes
        )
        self._register = self.redis.register_script(_REGISTER)
        self._unregister = self.redis.register_script(_UNREGISTER)
        self._expire_registrations = self.redis.register_script(_EXPIRE_REGISTRATIONS)
        self._claim_reference = self.redis.register_script(_CLAIM_REFERENCE)
        self._claim_passports = self.redis.register_script(_CLAIM_PASSPORTS)
        self._campaign = self.redis.register_script(_CAMPAIGN)
        self._failures = self.redis.register_script(_FAILURES)
        self._keep_session = self.redis.register_script(_KEEP_SESSION)
        self._get_session = self.redis.register_script(_GET_SESSION)

    # --- the synchronous hot path: local answer, background write ---------------------------

    def remember_message(self, message_id: str, system_id: str, now: float) -> None:
        key = canonical_message_id(message_id)
        self._local.remember_canonical(key, system_id, now)
        self._queue(("route", key, f"{system_id}\t{now!r}"))

    def owner_of(self, message_id: str, now: float) -> str | None:
        return self._local.owner_of(message_id, now)

    def audit(self, record: AuditRecord) -> None:
        doc = _AUDIT_JSON.encode({"kind": record.kind, "at": record.at, "fields": record.fields})
        self._queue(("audit", doc, None))

    def _queue(self, item: tuple[str, Any, Any]) -> None:
        if len(self._pending) == self._pending.maxlen:
            # Redis has been away for a while: the oldest write goes (the local map still has it).
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("store.redis_writes_dropped", dropped=self.dropped)
        self._pending.append(item)
        if self._flusher is None or self._flusher.done():
            try:
                self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
            except RuntimeError:
                return  # no loop (a synchronous caller): written at the next flush()
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except (aioredis.RedisError, OSError) as exc:
                self.write_errors += 1
                log.warning("store.redis_unavailable", error=str(exc), pending=len(self._pending))
                await asyncio.sleep(1.0)
                self._wake.set()

    async def flush(self) -> None:
        """Write what the synchronous calls queued; on failure the batch stays queued."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch = [self._pending[i] for i in range(min(len(self._pending), 500))]
            routes: list[str] = []
            audits = []
            for kind, a, b in batch:
                if kind == "route":
                    routes += (a, b)
                else:
                    audits.append(a)
            pipe = self.redis.pipeline(transaction=False)
            if routes:
                head: list[str | int] = [self.p + "route:", max(1, int(self.ttl))]
                packed = "\0".join(routes) + "\0"
                if packed.count("\0") == len(routes):
                    await self._packed_routes(args=[*head, packed], client=pipe)
                else:  # a NUL inside an id or a value after all: an argument each
                    await self._routes(args=[*head, *routes], client=pipe)
            if audits:
                pipe.rpush(self.p + "audit", *audits)
                pipe.ltrim(self.p + "audit", -self.max_audit, -1)
            await pipe.execute()
            for _ in batch:
                self._pending.popleft()

    # --- the asynchronous interface -----------------------------------------------------------

    async def route_owner(self, message_id: str, now: float) -> str | None:
        if (owner := self._local.owner_of(message_id, now)) is not None:
            return owner
        for key in message_id_keys(message_id):
            value = await self.redis.get(self.p + "route:" + key)
            if value:
                system_id, _, at = str(value).rpartition("\t")
                if now - float(at) <= self.ttl:
                    return str(system_id)
        return None

    async def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        await self.flush()
        rows = await self.redis.lrange(self.p + "audit", -limit, -1)
        docs = [json.loads(row) for row in rows]
        return [AuditRecord(d["kind"], d["at"], d["fields"]) for d in docs]

    async def get_risk(self, subscriber: str) -> RiskScore | None:
        got = await self.redis.hmget(self.p + "risk:" + subscriber, ["value", "updated_at"])
        return None if got[0] is None else RiskScore(float(str(got[0])), float(str(got[1])))

    async def set_risk(self, subscriber: str, value: float, now: float) -> None:
        await self.redis.hset(self.p + "risk:" + subscriber, mapping={"value": repr(value), "updated_at": repr(now)})

    async def get_risks(self, subscribers: Sequence[str]) -> list[RiskScore | None]:
        """``get_risk`` of each, in one script call."""
        if not subscribers:
            return []
        lines = str(await self._get_risks(args=[self.p + "risk:", *subscribers])).split("\n")
        scores: list[RiskScore | None] = []
        for line in lines:
            value, _, at = line.partition("\t")
            scores.append(RiskScore(float(value), float(at)) if value else None)
        return scores

    async def set_risks(self, scores: Sequence[tuple[str, float, float]]) -> None:
        """``set_risk`` of each (subscriber, value, now), in one script call."""
        if not scores:
            return
        args = [self.p + "risk:"]
        for subscriber, value, now in scores:
            args += (subscriber, repr(value), repr(now))
        await self._set_risks(args=args)

    async def register(self, aor: str, registration: Registration) -> None:
        r = registration
        doc = [r.contact, r.expires_at, r.flow, r.instance, r.call_id, r.cseq, r.q]
        await self._register(args=[self.p, aor, r.contact, json.dumps(doc), repr(r.expires_at)])

    async def unregister(self, aor: str, contact: str) -> None:
        await self._unregister(args=[self.p, aor, contact])

    async def expire_registrations(self, now: float, limit: int = 1000) -> int:
        return int(await self._expire_registrations(args=[self.p, repr(now), limit]))

    async def _index_unindexed_registrations(self) -> None:
        """Put the contacts written before ``reg_expiry`` existed into it, once per store."""
        if not await self.redis.set(self.p + "reg_expiry_indexed", "1", nx=True):
            return
        for aor in map(str, await self.redis.smembers(self.p + "aors")):
            rows = await self.redis.hvals(self.p + "reg:" + aor)
            members = {_reg_member(aor, row[0]): float(row[1]) for row in map(json.loads, rows)}
            if members:
                await self.redis.zadd(self.p + "reg_expiry", members, nx=True)

    async def claim_reference(self, reference: str, now: float, until: float) -> bool:
        claimed = await self._claim_reference(
            keys=[self.p + "ref:" + reference], args=[repr(now), repr(until), _hold_ms(now, until)]
        )
        return bool(int(claimed))

    async def claim_passports(self, used: Sequence[tuple[bytes, float]], call_id: str, now: float) -> bool:
        """Claim PASSporTs for one call (gateway.sip.shared_replay): False when one serves another call."""
        if not used:
            return True
        args: list[str | int] = [repr(now), call_id]
        for _, stale_at in used:
            args += [repr(stale_at), _hold_ms(now, stale_at)]
        keys = [self.p + "ppt:" + key.hex() for key, _ in used]
        return bool(int(await self._claim_passports(keys=keys, args=args)))

    async def hold_reference(self, reference: str, now: float, until: float) -> None:
        await self.redis.set(self.p + "ref:" + reference, repr(until), px=_hold_ms(now, until))

    async def drop_reference(self, reference: str) -> None:
        await self.redis.delete(self.p + "ref:" + reference)

    async def failures(self, key: str, now: float, window: float) -> int:
        return await self._count_failures(key, now, window, 0)

    async def count_failure(self, key: str, now: float, window: float, keep: int) -> int:
        return await self._count_failures(key, now, window, max(1, keep))

    async def _count_failures(self, key: str, now: float, window: float, keep: int) -> int:
        hold_ms = max(_MIN_HOLD_MS, math.ceil(window * 1000))
        return int(await self._failures(args=[self.p, key, repr(now), repr(now - window), hold_ms, keep]))

    async def clear_failures(self, key: str) -> None:
        await self.redis.delete(self.p + "failures:" + key)

    async def keep_console_session(
        self, session: ConsoleSession, now: float, limit: int, per_operator: int = DEFAULT_SESSIONS_PER_OPERATOR
    ) -> None:
        hold_ms = max(_MIN_HOLD_MS, math.ceil((session.expires_at - now) * 1000))
        fields = [session.operator, session.role, session.csrf, session.account]
        times = [repr(session.created_at), repr(session.seen_at), repr(session.expires_at)]
        await self._keep_session(
            args=[self.p, session.key, repr(now), max(1, limit), hold_ms, max(1, per_operator), *fields, *times]
        )

    async def console_session(self, key: str, now: float, idle: float, *, touch: bool = True) -> ConsoleSession | None:
        found = await self._get_session(args=[self.p, key, repr(now), repr(now - idle), "1" if touch else "0"])
        if not found:
            return None
        operator, role, csrf, account, created, seen, expires = found
        return ConsoleSession(key, operator, role, csrf, account, float(created), float(seen), float(expires))

    async def drop_console_session(self, key: str) -> None:
        owner = await self.redis.hget(self.p + "session:" + key, "operator")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.p + "session:" + key)
            pipe.zrem(self.p + "sessions", key)
            if owner is not None:
                pipe.zrem(self.p + "sessions_of:" + (owner.decode() if isinstance(owner, bytes) else owner), key)
            await pipe.execute()

    async def registrations(self, aor: str, now: float) -> list[Registration]:
        rows = await self.redis.hvals(self.p + "reg:" + aor)
        regs = [Registration(*json.loads(row)) for row in rows]
        return sorted((r for r in regs if r.expires_at > now), key=lambda r: (-r.q, r.contact))

    async def all_registrations(self, now: float) -> dict[str, list[Registration]]:
        await self._index_unindexed_registrations()
        found: dict[str, list[Registration]] = {}
        for aor in sorted(map(str, await self.redis.smembers(self.p + "aors"))):
            if regs := await self.registrations(aor, now):
                found[aor] = regs
        return found

    async def open_or_update_case(
        self,
        subscriber: str,
        tier: str,
        fraud_type: str,
        now: float,
        due_at: float,
        family: tuple[str, ...] = (),
    ) -> tuple[Case, bool]:
        template = new_case("0", subscriber, check_tier(tier), fraud_type, now, due_at, family)
        created, doc = await self._open_or_update(
            args=[
                self.p,
                subscriber,
                tier,
                fraud_type,
                repr(now),
                json.dumps(_exact_times(template.to_doc())),
                json.dumps(list(template.family)),
            ]
        )
        return Case.from_doc(json.loads(doc)), bool(int(created))

    async def get_case(self, case_id: str) -> Case:
        raw = await self.redis.get(self.p + "case:" + case_id)
        if raw is None:
            raise UnknownCase(case_id)
        return Case.from_doc(json.loads(raw))

    async def open_case_of(self, subscriber: str) -> Case | None:
        case_id = await self.redis.get(self.p + "open:" + subscriber)
        return None if case_id is None else await self.get_case(str(case_id))

    async def _cases(self, ids: list[str]) -> list[Case]:
        if not ids:
            return []
        raws = await self.redis.mget([self.p + "case:" + i for i in ids])
        return [Case.from_doc(json.loads(raw)) for raw in raws if raw is not None]

    async def open_cases(self) -> list[Case]:
        ids = sorted(map(str, await self.redis.smembers(self.p + "open_cases")), key=int)
        return await self._cases(ids)

    async def all_cases(self) -> list[Case]:
        # Case ids are the values of one counter, so 1..counter are every case there is.
        last = int(await self.redis.get(self.p + "case_id") or 0)
        found: list[Case] = []
        for start in range(1, last + 1, 1000):
            found += await self._cases([str(i) for i in range(start, min(start + 1000, last + 1))])
        return found

    async def due_cases(self, now: float, limit: int = 100) -> list[Case]:
        ids = await self.redis.zrangebyscore(self.p + "due", "-inf", now, start=0, num=limit)
        return [c for c in await self._cases([str(i) for i in ids]) if c.state == OPEN]

    async def next_due(self) -> float | None:
        # ``ready`` holds each scheduled case at the later of its due time and its lease's end.
        first = await self.redis.zrange(self.p + "ready", 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def claim_due(self, instance: str, now: float, lease_until: float, limit: int = 100) -> list[Case]:
        docs = await self._claim(args=[self.p, instance, repr(now), repr(lease_until), limit])
        return [Case.from_doc(json.loads(doc)) for doc in docs]

    def _result(self, case_id: str, answer: list[str]) -> Case:
        status, value = answer
        if status == "ok":
            return Case.from_doc(json.loads(value))
        if value == "unknown":
            raise UnknownCase(case_id)
        if value == "lease":
            raise LeaseLost(case_id)
        raise ValueError(f"case {case_id} is already {value.partition(':')[2]}")

    async def record_attempt(
        self, case_id: str, instance: str, now: float, next_due: float | None, detail: str = ""
    ) -> Case:
        nxt = "" if next_due is None else repr(next_due)
        return await self._attempts.submit((case_id, instance, repr(now), nxt, detail))

    async def _record_attempts(self, attempts: list[tuple[str, str, str, str, str]]) -> list[Case | Exception]:
        flat = await self._attempts_script(args=[self.p, *(arg for attempt in attempts for arg in attempt)])
        answers: list[Case | Exception] = []
        for (case_id, *_), status, value in zip(attempts, flat[::2], flat[1::2], strict=True):
            try:
                answers.append(self._result(case_id, [status, value]))
            except (UnknownCase, LeaseLost, ValueError) as exc:
                answers.append(exc)
        return answers

    async def note(
        self,
        case_id: str,
        event: str,
        now: float,
        detail: str = "",
        *,
        instance: str = "",
        once: bool = False,
        late: bool = False,
    ) -> Case | None:
        flags = ("1" if once else "0", "1" if late else "0")
        return await self._notes.submit((case_id, event, repr(now), detail, instance, *flags))

    async def _record_notes(
        self, notes: list[tuple[str, str, str, str, str, str, str]]
    ) -> list[Case | Exception | None]:
        flat = await self._notes_script(args=[self.p, *(arg for note in notes for arg in note)])
        answers: list[Case | Exception | None] = []
        for (case_id, *_), status, value in zip(notes, flat[::2], flat[1::2], strict=True):
            try:
                answers.append(None if status == "none" else self._result(case_id, [status, value]))
            except (UnknownCase, LeaseLost, ValueError) as exc:
                answers.append(exc)
        return answers

    async def transition(self, case_id: str, state: str, now: float, instance: str = "", detail: str = "") -> Case:
        if state not in CASE_STATES or state == OPEN:
            raise ValueError(f"a case can move to handled, escalated or closed, not {state!r}")
        answer = await self._move(args=[self.p, case_id, state, repr(now), instance, detail])
        return self._result(case_id, answer)

    async def desk(self, case_id: str, action: str, now: float, operator: str, detail: str = "") -> Case:
        # Checked here as the other backends do, so that a bad request never reaches the script.
        if action not in DESK_ACTIONS:
            raise ValueError(f"an operator may claim, note or close a case, not {action!r}")
        if not operator or " " in operator:
            raise ValueError("the operator's name must be one word")
        answer = await self._desk(args=[self.p, case_id, action, repr(now), operator, detail])
        if answer[0] == "err" and str(answer[1]).startswith("claimed:"):
            raise ValueError(f"case {case_id} is claimed by {str(answer[1]).partition(':')[2]}")
        return self._result(case_id, answer)

    async def release(self, case_id: str, instance: str) -> None:
        await self._release(args=[self.p, case_id, instance])

    async def campaign_sighting(self, copy: CampaignCopy, policy: CampaignPolicy) -> CampaignSeen:
        doc = {
            "sketch": copy.sketch,
            "bands": list(copy.bands),
            "recipients": list(copy.recipients),
            "evidence": copy.evidence,
        }
        opened, raw = await self._campaign(
            args=[
                self.p,
                json.dumps(doc),
                repr(float(policy.window)),
                policy.recipients,
                repr(float(policy.similarity)),
                "1" if policy.needs_evidence else "0",
                policy.max_clusters,
                repr(float(copy.now)),
            ]
        )
        return campaign_seen(Cluster.from_doc(json.loads(raw)), bool(int(opened)))

    async def campaign_clusters(self) -> int:
        return int(await self.redis.zcard(self.p + "clusters"))

    async def close(self) -> None:
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self.flush()
        await cancel_and_wait(self._flusher)
        await self._attempts.close()
        await self._notes.close()
        await self.redis.aclose()
