'use strict'
// The versioned secrets store, principals with policies, and the audit trail.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const sr = require('strongroom')

// Temporary folders made by this file, removed when its tests are done.
const madeDirs = []
function tempDir (prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  madeDirs.push(d)
  return d
}
test.after(() => {
  for (const d of madeDirs) fs.rmSync(d, { recursive: true, force: true })
})
const { Strongroom, Policy, SecretsStore, Secret } = sr

function tmpdir () {
  return tempDir('strongroom-node-secrets-')
}

async function store () {
  return Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
}

test('S6 secrets: versions, CAS conflict is typed with the current version', async () => {
  const s = await store()
  const p = 'prod/app/db'
  const v1 = await s.putSecret(p, Buffer.from('pw-1'), { cas: 0 })
  assert.equal(v1.version, 1)
  assert.ok(v1.createdAt instanceof Date)
  const v2 = await s.putSecret(p, 'pw-2', { cas: 1 })
  assert.equal(v2.version, 2)

  await assert.rejects(s.putSecret(p, 'pw-3', { cas: 1 }), (e) =>
    e instanceof sr.CasConflict && e.code === 'secret.cas_mismatch' &&
    e.current === 2 && e.expected === 1 && e.path === p && !e.message.includes('pw-3'))
  await assert.rejects(s.putSecret(p, 'x', { cas: 0 }), (e) => e instanceof sr.CasConflict && e.current === 2)

  const latest = await s.getSecret(p)
  assert.equal(latest.version, 2)
  assert.ok(latest.value instanceof Secret)
  assert.equal(latest.value.reveal().toString(), 'pw-2')
  assert.equal(String(latest.value), '[REDACTED]')
  const old = await s.getSecret(p, { version: 1 })
  assert.equal(old.value.reveal().toString(), 'pw-1')

  await s.putSecret('prod/app/api', 'k')
  await s.putSecret('prod/other/x', 'k')
  assert.deepEqual((await s.listSecrets('prod/app')).sort(), ['api', 'db'])

  const md = await s.secretMetadata(p)
  assert.equal(md.currentVersion, 2)
  assert.deepEqual(md.versions.map((v) => v.version), [1, 2])
  assert.ok(md.createdAt instanceof Date)

  // The same store object through secrets().
  const direct = s.secrets()
  assert.ok(direct instanceof SecretsStore)
  assert.equal(direct.principal, null)
  assert.equal((await direct.get(p)).value.reveal().toString(), 'pw-2')
})

test('S7 secrets: deleted and destroyed are distinct typed errors; not found; invalid path', async () => {
  const s = await store()
  const p = 'prod/app/token'
  await s.putSecret(p, 'one')
  await s.putSecret(p, 'two')
  await s.putSecret(p, 'three')

  assert.deepEqual(await s.deleteSecret(p, [1]), [1])
  await assert.rejects(s.getSecret(p, { version: 1 }), (e) =>
    e instanceof sr.VersionDeleted && e.code === 'secret.version_deleted' &&
    e.version === 1 && Number.isInteger(e.deleted_at))
  assert.deepEqual(await s.undeleteSecret(p, [1]), [1])
  assert.equal((await s.getSecret(p, { version: 1 })).value.reveal().toString(), 'one')

  assert.deepEqual(await s.destroySecret(p, [2]), [2])
  await assert.rejects(s.getSecret(p, { version: 2 }), (e) =>
    e instanceof sr.VersionDestroyed && !(e instanceof sr.VersionDeleted) &&
    e.code === 'secret.version_destroyed' && e.version === 2)
  // A destroyed version cannot be undeleted.
  await assert.rejects(s.undeleteSecret(p, [2]), sr.VersionDestroyed)
  const md = await s.secretMetadata(p)
  assert.ok(md.versions[1].destroyedAt instanceof Date)
  assert.equal(md.versions[0].deletedAt, undefined)

  // Delete with no versions: the current one.
  assert.deepEqual(await s.deleteSecret(p), [3])
  await assert.rejects(s.getSecret(p), sr.VersionDeleted)

  await assert.rejects(s.getSecret('prod/app/missing'), (e) =>
    e instanceof sr.NotFound && e.code === 'secret.not_found' && e.path === 'prod/app/missing')
  await assert.rejects(s.getSecret(p, { version: 9 }), (e) => e instanceof sr.NotFound && e.version === 9)
  await assert.rejects(s.putSecret('prod/../admin', 'x'), (e) =>
    e instanceof sr.InvalidPath && e.code.startsWith('path.'))
})

const POLICY = `
name = "payment-svc"
[[path]]
pattern = "prod/payment-svc/*"
capabilities = ["create", "read"]
`

test('S8 principal: allowed calls work, denied ones throw PolicyDenied and are audited', async () => {
  const s = await store()
  const policy = Policy.fromToml(POLICY)
  assert.equal(policy.name, 'payment-svc')
  const audit = await s.openAuditLog({ memory: true })
  const svc = s.asPrincipal('payment-svc', [policy], audit)
  assert.equal(svc.principal, 'payment-svc')

  const v = await svc.put('prod/payment-svc/postgres', 'pw-1', { cas: 0 })
  assert.equal(v.version, 1)
  assert.equal((await svc.get('prod/payment-svc/postgres')).value.reveal().toString(), 'pw-1')

  // No `update`: a second write is denied.
  await assert.rejects(svc.put('prod/payment-svc/postgres', 'pw-2'), (e) =>
    e instanceof sr.PolicyDenied && e.code === 'policy.denied' &&
    e.principal === 'payment-svc' && e.capability === 'update' && e.path === 'prod/payment-svc/postgres')
  await assert.rejects(svc.get('prod/billing/db'), (e) =>
    e instanceof sr.PolicyDenied && e.capability === 'read' && e.path === 'prod/billing/db')

  const lines = audit.memoryLines().map((l) => JSON.parse(l))
  const head = await audit.head()
  assert.equal(head.seq, lines.length)
  assert.equal(lines.length, 5) // write intent + result, read, two denials
  const denied = lines.filter((r) => JSON.stringify(r).includes('"denied"'))
  assert.equal(denied.length, 2)
  assert.ok(denied.some((r) => JSON.stringify(r).includes('prod/billing/db')))
  // The value never reaches the audit trail.
  assert.ok(!audit.memoryLines().join('\n').includes('pw-1'))

  assert.throws(() => Policy.fromToml('name = "x"\n[[path]]\npattern = "a/*"\ncapabilities = ["fly"]\n'),
    (e) => e instanceof sr.PolicyParseError && e.code === 'policy.parse')
})

test('S9 audit file: verifies, and a tampered copy fails with the seq of the edited record', async () => {
  const dir = tmpdir()
  const file = path.join(dir, 'audit.jsonl')
  const s = await store()
  const policy = Policy.fromToml(POLICY)
  const audit = await s.openAuditLog({ file })
  const svc = s.asPrincipal('payment-svc', [policy], audit)
  await svc.put('prod/payment-svc/a', 'v-a')
  await svc.put('prod/payment-svc/b', 'v-b')
  await svc.get('prod/payment-svc/a')
  await assert.rejects(svc.get('prod/other/c'), sr.PolicyDenied)

  const report = await sr.verifyAuditFile(file, s)
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n')
  assert.equal(report.records, lines.length)
  assert.equal(report.records, 6)
  assert.deepEqual(report.head, await audit.head())

  // Edit record 3 (change its path) in a copy.
  const tampered = path.join(dir, 'tampered.jsonl')
  const edited = [...lines]
  assert.ok(edited[2].includes('prod/payment-svc/b'))
  edited[2] = edited[2].replace('prod/payment-svc/b', 'prod/payment-svc/z')
  fs.writeFileSync(tampered, edited.join('\n') + '\n')
  await assert.rejects(sr.verifyAuditFile(tampered, s), (e) =>
    e instanceof sr.AuditChainBroken && e.code === 'audit.chain_broken' &&
    e.seq === 3 && /MAC/.test(e.reason))

  // A truncated copy fails where the missing record should be (the store
  // saved its head).
  const truncated = path.join(dir, 'truncated.jsonl')
  fs.writeFileSync(truncated, lines.slice(0, 4).join('\n') + '\n')
  await assert.rejects(sr.verifyAuditFile(truncated, s), (e) => e instanceof sr.AuditChainBroken && e.seq === 5)

  // Another store's key does not verify this file.
  await assert.rejects(sr.verifyAuditFile(file, await store()), sr.AuditChainBroken)
})

test('S9 audit file: a reopened log continues the chain; a missing or edited file is refused', async () => {
  const dir = tmpdir()
  const file = path.join(dir, 'audit.jsonl')
  const s = await store()
  const policy = Policy.fromToml(POLICY)
  const first = await s.openAuditLog({ file, fsync: false })
  await s.asPrincipal('payment-svc', [policy], first).put('prod/payment-svc/a', 'v')
  assert.equal((await first.head()).seq, 2)

  const again = await s.openAuditLog({ file })
  await s.asPrincipal('payment-svc', [policy], again).get('prod/payment-svc/a')
  assert.equal((await again.head()).seq, 3)
  const report = await sr.verifyAuditFile(file, s)
  assert.equal(report.records, 3)

  // A new file cannot silently restart a chain the store has a head for.
  await assert.rejects(s.openAuditLog({ file: path.join(dir, 'other.jsonl') }), sr.AuditChainBroken)
  // An edited file is not continued.
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n')
  lines[0] = lines[0].replace('prod/payment-svc/a', 'prod/payment-svc/q')
  fs.writeFileSync(file, lines.join('\n') + '\n')
  await assert.rejects(s.openAuditLog({ file }), (e) => e instanceof sr.AuditChainBroken && e.seq === 1)
})

test('errors other than the named ones still carry their table class and code', async () => {
  const s = await store()
  await s.putSecret('prod/app/x', 'v')
  const err = await s.undeleteSecret('prod/app/x', [7]).catch((e) => e)
  assert.ok(err instanceof sr.StrongroomError)
  assert.ok(sr.ERROR_CODES.some((r) => r.code === err.code && err instanceof sr[r.class]), err.code)
})
