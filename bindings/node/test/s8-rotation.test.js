'use strict'
// bindings/SCENARIOS.md S8: rotation of an API key, verified with overlap.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const util = require('node:util')
const sr = require('strongroom')
const { Strongroom, Storage, ApiKeyRotation, Secret } = sr

const FORMAT = /^sk_[0-9A-Za-z]{32}$/

async function s3Store () {
  const storage = Storage.memory()
  const key = crypto.randomBytes(32)
  return { storage, key, store: await Strongroom.init(storage, { key }) }
}

test('S8 rotateNow twice: current 2, previous 1; the verifier accepts both, nothing else', async () => {
  const { store } = await s3Store()
  const rot = await store.apiKeyRotation('svc/api-key', { prefix: 'sk_', chars: 32, gracePeriodMs: 3_600_000 })
  assert.ok(rot instanceof ApiKeyRotation)
  assert.equal(rot.name, 'svc/api-key')
  assert.deepEqual(await rot.staged(), { pending: null, current: null, previous: null })

  assert.deepEqual(await rot.rotateNow(), { promoted: 1, revoked: null })
  let st = await rot.status()
  assert.equal(st.current, 1)
  assert.equal(st.previous, null)
  const first = (await rot.staged()).current
  assert.equal(first.version, 1)
  assert.equal(first.identity, 'sk_')
  assert.ok(first.secret instanceof Secret)
  assert.match(first.secret.reveal().toString(), FORMAT)
  assert.equal(rot.verify(first.secret), 'current')

  assert.deepEqual(await rot.rotateNow(), { promoted: 2, revoked: null })
  st = await rot.status()
  assert.equal(st.current, 2)
  assert.equal(st.previous, 1)
  assert.equal(st.pending, null)
  assert.equal(st.inFlight, null)
  assert.ok(st.revokePreviousAt instanceof Date)
  assert.ok(st.revokePreviousAt.getTime() > Date.now() + 3_500_000)
  assert.deepEqual(st.history.map((h) => h.version), [1, 2])
  assert.ok(st.history[0].supersededAt instanceof Date)

  const staged = await rot.staged()
  assert.equal(staged.current.version, 2)
  assert.equal(staged.previous.version, 1)
  const current = staged.current.secret.reveal().toString()
  const previous = staged.previous.secret.reveal().toString()
  assert.match(current, FORMAT)
  assert.equal(previous, first.secret.reveal().toString())
  assert.notEqual(current, previous)

  assert.equal(rot.verify(current), 'current')
  assert.equal(rot.verify(Buffer.from(previous)), 'previous')
  assert.equal(rot.verify(previous.slice(0, -1) + (previous.endsWith('a') ? 'b' : 'a')), 'no_match')
  assert.equal(rot.verify('sk_' + 'x'.repeat(32)), 'no_match')
  assert.equal(rot.verify(''), 'no_match')

  // Not due within the grace period.
  assert.equal(await rot.revokeDue(), false)
  assert.equal((await rot.status()).previous, 1)

  // Staged secrets print as a redaction.
  const printed = [util.inspect(staged), JSON.stringify(staged), `${staged.current.secret}`,
    util.inspect(await rot.staged(), { depth: 5 })].join('\n')
  assert.ok(!printed.includes(current) && !printed.includes(previous), printed)
  assert.match(printed, /REDACTED/)
})

test('S8 a second engine over the same store sees the same versions, and its verifier the same keys', async () => {
  const { storage, key, store } = await s3Store()
  const a = await store.apiKeyRotation('svc/api-key', { prefix: 'sk_', chars: 32 })
  await a.rotateNow()
  await a.rotateNow()
  const other = await Strongroom.unseal(storage, { key })
  const b = await other.apiKeyRotation('svc/api-key', { prefix: 'sk_', chars: 32 })
  const sa = await a.staged()
  const sb = await b.staged()
  assert.equal(sb.current.version, 2)
  assert.equal(sb.previous.version, 1)
  assert.ok(sb.current.secret.reveal().equals(sa.current.secret.reveal()))
  assert.ok(sb.previous.secret.reveal().equals(sa.previous.secret.reveal()))
  const { history, ...statusB } = await b.status()
  const { history: historyA, ...statusA } = await a.status()
  assert.deepEqual(statusB, statusA)
  assert.deepEqual(history, historyA)
  assert.equal(b.verify(sa.current.secret), 'current')
  assert.equal(b.verify(sa.previous.secret), 'previous')

  // b rotates; a's verifier learns it through sync().
  await b.rotateNow()
  const sb3 = await b.staged()
  assert.equal(sb3.current.version, 3)
  assert.equal(a.verify(sb3.current.secret), 'no_match')
  await a.sync()
  assert.equal(a.verify(sb3.current.secret), 'current')
  assert.equal(a.verify(sa.current.secret), 'previous')
  assert.equal(a.verify(sa.previous.secret), 'no_match')
})

test('S8 grace period 0: revokeDue removes previous and the old key no longer matches', async () => {
  const { store } = await s3Store()
  const rot = await store.apiKeyRotation('svc/api-key', { prefix: 'sk_', chars: 32, gracePeriodMs: 0 })
  await rot.rotateNow()
  const old = (await rot.staged()).current.secret
  await rot.rotateNow()
  assert.equal(rot.verify(old), 'previous', 'still accepted until revokeDue runs')
  assert.equal(await rot.revokeDue(), true)
  const st = await rot.status()
  assert.equal(st.current, 2)
  assert.equal(st.previous, null)
  assert.ok(st.history.find((h) => h.version === 1).revokedAt instanceof Date)
  assert.equal((await rot.staged()).previous, null)
  assert.equal(rot.verify(old), 'no_match')
  assert.equal(await rot.revokeDue(), false, 'nothing left to revoke')
  // resume() has nothing to finish.
  assert.deepEqual(await rot.resume(), { promoted: null, revoked: null })
})

test('S8 hex keys, bad names and options are typed errors', async () => {
  const { store } = await s3Store()
  const hex = await store.apiKeyRotation('svc/hex-key', { prefix: 'hk_', hexBytes: 16 })
  await hex.rotateNow()
  assert.match((await hex.staged()).current.secret.reveal().toString(), /^hk_[0-9a-f]{32}$/)

  for (const name of ['', 'Svc/Key', 'a//b', '../x']) {
    const e = await store.apiKeyRotation(name, { chars: 32 }).catch((err) => err)
    assert.ok(e instanceof sr.RotationInvalidName, `${name}: ${e && e.name}`)
    assert.equal(e.code, 'rotation.invalid_name')
    assert.equal(typeof e.reason, 'string')
    assert.equal(e.name, 'RotationInvalidName')
    assert.equal(e.credential, name)
  }
  await assert.rejects(store.apiKeyRotation('svc/k', {}), TypeError)
  await assert.rejects(store.apiKeyRotation('svc/k', { chars: 8, hexBytes: 8 }), TypeError)
  await assert.rejects(store.apiKeyRotation('svc/k', { chars: 1.5 }), TypeError)
  await assert.rejects(store.apiKeyRotation('svc/k', { chars: 32, gracePeriodMs: -1 }), sr.InvalidArgument)
  store.seal()
  await assert.rejects(hex.rotateNow(), sr.Sealed)
  await assert.rejects(hex.staged(), sr.Sealed)
})

test('S8 importCurrent adopts an existing key (even one older than the format); an empty key or a second import is a typed error', async () => {
  const { store } = await s3Store()
  const rot = await store.apiKeyRotation('svc/legacy', { prefix: 'sk_', chars: 32, gracePeriodMs: 0 })
  const e1 = await rot.importCurrent('').catch((err) => err)
  assert.ok(e1 instanceof sr.RotationStepFailed, `got ${e1 && e1.name}`)
  assert.equal(e1.code, 'rotation.step_failed')
  assert.equal(e1.credential, 'svc/legacy')
  assert.equal(e1.step, 'test_pending')
  assert.equal(e1.version, 1)
  assert.equal(typeof e1.attempts, 'number')
  assert.equal((await rot.status()).current, null)

  const legacy = 'legacy-key-from-before'
  assert.equal(await rot.importCurrent(new Secret(legacy)), 1)
  assert.equal(rot.verify(legacy), 'current')
  const st = await rot.staged()
  assert.equal(st.current.version, 1)
  assert.equal(st.current.identity, 'sk_')
  assert.equal(st.current.secret.reveal().toString(), legacy)

  const e2 = await rot.importCurrent(legacy).catch((err) => err)
  assert.ok(e2 instanceof sr.RotationAlreadyInitialized, `got ${e2 && e2.name}`)
  assert.equal(e2.credential, 'svc/legacy')

  // Rotating away from the imported key: it is previous, then revoked.
  await rot.rotateNow()
  assert.equal(rot.verify(legacy), 'previous')
  assert.equal(await rot.revokeDue(), true)
  assert.equal(rot.verify(legacy), 'no_match')
})

test('error classes exist for the lease and rotation codes of the core', () => {
  for (const [name, code] of [
    ['LeaseRevokerFailed', 'LEASE_REVOKER_FAILED'],
    ['LeaseRevocationDeferred', 'LEASE_REVOCATION_DEFERRED'],
    ['LeaseIrrevocable', 'LEASE_IRREVOCABLE'],
    ['LeaseNotActive', 'LEASE_NOT_ACTIVE'],
    ['LeaseInvalidTtl', 'LEASE_INVALID_TTL'],
    ['LeaseInvalidEngine', 'LEASE_INVALID_ENGINE'],
    ['RotationInvalidName', 'ROTATION_INVALID_NAME'],
    ['RotationBusy', 'ROTATION_BUSY'],
    ['RotationLostLock', 'ROTATION_LOST_LOCK'],
    ['RotationStepFailed', 'ROTATION_STEP_FAILED'],
    ['RotationRolledBack', 'ROTATION_ROLLED_BACK'],
    ['RotationAlreadyInitialized', 'ROTATION_ALREADY_INITIALIZED'],
    ['RotationCorruptState', 'ROTATION_CORRUPT_STATE'],
    ['RotationAuditRefused', 'ROTATION_AUDIT_REFUSED']
  ]) {
    const cls = sr[name]
    assert.equal(typeof cls, 'function', name)
    assert.equal(cls.code, code.toLowerCase().replace(/^(rotation|lease)_/, '$1.'))
    const e = new cls('m', {})
    assert.ok(e instanceof sr.StrongroomError && e instanceof Error)
    assert.equal(e.name, name)
    assert.equal(e.code, cls.code)
    assert.equal(e.legacyCode, `ERR_STRONGROOM_${code}`)
  }
})

test('S8 key formats follow strongroom-host\'s one set of rules: InvalidArgument outside them', async () => {
  const { store } = await s3Store()
  for (const opts of [{ chars: 8 }, { chars: 15 }, { chars: 1025 }, { hexBytes: 11 }, { hexBytes: 0 },
    { prefix: 'has space', chars: 32 }, { prefix: 'p'.repeat(65), chars: 32 }]) {
    const e = await store.apiKeyRotation('svc/fmt', opts).catch((err) => err)
    assert.ok(e instanceof sr.InvalidArgument, `${JSON.stringify(opts)}: ${e && e.name}`)
  }
  const edge = await store.apiKeyRotation('svc/fmt', { prefix: 'p'.repeat(64), chars: 16 })
  await edge.rotateNow()
  assert.match((await edge.staged()).current.secret.reveal().toString(), /^p{64}[0-9A-Za-z]{16}$/)
  const hex = await store.apiKeyRotation('svc/fmt-hex', { hexBytes: 12 })
  await hex.rotateNow()
  assert.match((await hex.staged()).current.secret.reveal().toString(), /^[0-9a-f]{24}$/)
})
