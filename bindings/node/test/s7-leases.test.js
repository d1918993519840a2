'use strict'
// bindings/SCENARIOS.md S7: leases on a manual clock, with a revoker written
// in JavaScript.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const sr = require('strongroom')
const { Strongroom, Clock } = sr

const T0 = 1_700_000_000_000
const S = 1000

async function setup (opts) {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const clock = Clock.manual(T0)
  const leases = store.leaseManager(clock, opts)
  const revoked = []
  leases.registerEngine('test', async (lease) => {
    revoked.push({ id: lease.id, data: lease.data.toString() })
  })
  return { store, clock, leases, revoked }
}

test('S7 issue, renew up to max TTL, revoke through the revoker, runDue, events', async () => {
  const { clock, leases, revoked } = await setup()
  const l = await leases.issue('db/creds/app', {
    engine: 'test', ttlMs: 60 * S, maxTtlMs: 300 * S, renewable: true, data: Buffer.from('role-1')
  })
  assert.match(l.id, /^lease_/)
  assert.equal(l.expiresAt.getTime(), T0 + 60 * S)
  assert.equal(l.maxExpiresAt.getTime(), T0 + 300 * S)
  assert.equal('data' in l, false, 'lease values never carry the revocation data')

  clock.advance(50 * S)
  assert.equal((await leases.renew(l.id, 120 * S)).expiresAt.getTime(), T0 + 170 * S)
  clock.advance(100 * S)
  assert.equal((await leases.renew(l.id, 1000 * S)).expiresAt.getTime(), T0 + 300 * S, 'capped at max TTL')

  const fixed = await leases.issue('db/creds/fixed', { engine: 'test', ttlMs: 60 * S, renewable: false })
  await assert.rejects(leases.renew(fixed.id, S), (e) => e instanceof sr.LeaseNotRenewable && e.id === fixed.id)

  const id2 = (await leases.issue('db/creds/other', { engine: 'test', ttlMs: 60 * S, data: 'role-2' })).id
  assert.equal((await leases.revoke(id2)).state, 'revoked')
  assert.deepEqual(revoked, [{ id: id2, data: 'role-2' }])
  await assert.rejects(leases.lookup(id2), (e) => e instanceof sr.LeaseNotFound && e.id === id2)

  clock.advance(150 * S + 1) // past T0 + 300 s
  const due = await leases.runDue()
  assert.ok(due.revoked >= 1)
  assert.ok(revoked.some((r) => r.id === l.id && r.data === 'role-1'), 'runDue revoked the lease through the revoker')
  await assert.rejects(leases.lookup(l.id), sr.LeaseNotFound)

  const kinds = new Set(leases.takeEvents().map((e) => e.kind))
  for (const k of ['issued', 'renewed', 'revoked']) assert.ok(kinds.has(k), `event ${k}`)
})

test('S7 a revoker that throws: revoke is LeaseRevocationDeferred naming the failure; forceRevoke removes it', async () => {
  const { leases } = await setup()
  leases.registerEngine('broken', async () => { throw new Error('database unreachable') })
  const l = await leases.issue('db/creds/app', { engine: 'broken', ttlMs: 60 * S })
  const e = await leases.revoke(l.id).catch((err) => err)
  assert.ok(e instanceof sr.LeaseRevocationDeferred, `got ${e && e.name}`)
  assert.ok(e instanceof sr.StrongroomError)
  assert.equal(e.code, 'lease.revocation_deferred')
  assert.equal(e.id, l.id)
  assert.equal(e.attempts, 1)
  assert.equal(typeof e.next_try, 'number')
  assert.match(e.reason, /revoker of engine "broken" failed/)
  assert.match(e.reason, /database unreachable/)
  assert.match((await leases.lookup(l.id)).state, /being revoked/)

  assert.equal((await leases.forceRevoke(l.id)).state, 'revoked')
  await assert.rejects(leases.lookup(l.id), sr.LeaseNotFound)
})

test('S7 revokePrefix, the lease quota, a bad id', async () => {
  const { leases, revoked } = await setup({ maxLeases: 2 })
  const a = await leases.issue('db/creds/a', { engine: 'test', ttlMs: 60 * S })
  const b = await leases.issue('db/creds/b', { engine: 'test', ttlMs: 60 * S })
  await assert.rejects(leases.issue('db/creds/c', { engine: 'test', ttlMs: 60 * S }),
    (e) => e instanceof sr.LeaseQuotaExceeded && e.limit === 2 && e.count === 2)
  await assert.rejects(leases.lookup('nope'), sr.LeaseInvalidId)

  const r = await leases.revokePrefix('db/creds')
  assert.deepEqual(r.revoked.slice().sort(), [a.id, b.id].sort())
  assert.deepEqual(r.pending, [])
  assert.deepEqual(revoked.map((x) => x.id).sort(), [a.id, b.id].sort())
  assert.deepEqual(await leases.list(''), [])
  // Room again under the quota.
  await leases.issue('db/creds/c', { engine: 'test', ttlMs: 60 * S })
  assert.throws(() => leases.registerEngine('x', 'not a function'), TypeError)
})
