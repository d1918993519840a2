'use strict'
// Leases with a manual clock: issue, renew (capped by max TTL), expiry,
// revocation by runDue(), events.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const sr = require('strongroom')
const { Strongroom, Clock } = sr

const T0 = Date.UTC(2026, 0, 1)

test('S10 leases: renew with a manual clock, expiry is LeaseExpired, runDue revokes', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const clock = Clock.manual(T0)
  assert.equal(clock.now(), T0)
  const leases = store.leaseManager(clock)

  const l = await leases.issue('prod/app/db', { ttlMs: 60_000, maxTtlMs: 150_000 })
  assert.match(l.id, /^lease_[0-9a-f]{32}$/)
  assert.equal(l.engine, 'noop')
  assert.equal(l.expiresAt.getTime(), T0 + 60_000)
  assert.equal(l.state, 'active')
  assert.deepEqual(await leases.list(''), [l.id])

  clock.advance(50_000)
  const r = await leases.renew(l.id, 60_000)
  assert.equal(r.expiresAt.getTime(), T0 + 110_000)
  // Renewals stop at issue + max TTL.
  clock.advance(50_000)
  const capped = await leases.renew(l.id, 600_000)
  assert.equal(capped.expiresAt.getTime(), T0 + 150_000)

  // Past expiry: renewing fails, typed.
  clock.advance(60_000)
  await assert.rejects(leases.renew(l.id, 1000), (e) =>
    e instanceof sr.LeaseExpired && e.code === 'lease.expired' &&
    e.id === l.id && e.expired_at === T0 + 150_000)

  const report = await leases.runDue()
  assert.equal(report.revoked, 1)
  await assert.rejects(leases.lookup(l.id), (e) => e instanceof sr.LeaseNotFound && e.id === l.id)
  assert.deepEqual(await leases.list(''), [])

  const kinds = leases.takeEvents().map((e) => e.kind)
  assert.equal(kinds[0], 'issued')
  assert.equal(kinds.filter((k) => k === 'renewed').length, 2)
  assert.equal(kinds.at(-1), 'revoked')
  assert.deepEqual(leases.takeEvents(), [])
})

test('S10 leases: revoke now, not renewable, unknown engine, bad id, system clock', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const clock = Clock.manual(T0)
  const leases = store.leaseManager(clock)
  const a = await leases.issue('prod/app/a', { ttlMs: 1000, renewable: false })
  await assert.rejects(leases.renew(a.id, 10), sr.LeaseNotRenewable)
  assert.equal((await leases.revoke(a.id)).state, 'revoked')
  await assert.rejects(leases.lookup(a.id), sr.LeaseNotFound)
  // Nothing left for runDue once revoked.
  clock.advance(5000)
  assert.equal((await leases.runDue()).revoked, 0)

  await assert.rejects(leases.issue('prod/app/b', { engine: 'db', ttlMs: 1000 }),
    (e) => e instanceof sr.LeaseNoRevoker && e.engine === 'db')
  await assert.rejects(leases.lookup('nope'), sr.LeaseInvalidId)
  assert.throws(() => Clock.system().advance(1), sr.InvalidArgument)
  assert.ok(Math.abs(Clock.system().now() - Date.now()) < 60_000)
  // Default clock: the store's (system) clock.
  const sys = store.leaseManager()
  const b = await sys.issue('prod/app/c', { ttlMs: 3_600_000 })
  assert.ok(b.expiresAt.getTime() > Date.now())
})

test('S10 leases: a JavaScript engine revokes; its failure defers and is retried', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const clock = Clock.manual(T0)
  const leases = store.leaseManager(clock)
  const revoked = []
  let fail = true
  leases.registerEngine('db', async (lease) => {
    if (fail) throw new Error('db unreachable')
    revoked.push(lease.id)
  })
  const l = await leases.issue('prod/app/db', { engine: 'db', ttlMs: 1000 })
  assert.equal(l.engine, 'db')

  clock.advance(2000)
  const first = await leases.runDue()
  assert.equal(first.revoked, 0)
  assert.equal(first.deferred, 1)
  assert.deepEqual(revoked, [])
  assert.match((await leases.lookup(l.id)).state, /being revoked/)

  fail = false
  clock.advance(600_000)
  const second = await leases.runDue()
  assert.equal(second.revoked, 1)
  assert.deepEqual(revoked, [l.id])
  await assert.rejects(leases.lookup(l.id), sr.LeaseNotFound)

  // revoke() now calls the engine at once.
  const m = await leases.issue('prod/app/m', { engine: 'db', ttlMs: 60_000 })
  await leases.revoke(m.id)
  assert.deepEqual(revoked, [l.id, m.id])
})
