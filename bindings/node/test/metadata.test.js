'use strict'
// Metadata updates (strongroom-host's MetadataUpdate) and the inventory.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
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
const { Strongroom, Clock, Policy } = sr

const DAY = 86_400_000

test('updateMetadata sets fields, keeps the others, and clears the ones named', async () => {
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32) })
  const s = store.secrets()
  for (let i = 0; i < 4; i++) await s.put('prod/db', `pw${i}`)
  let m = await s.updateMetadata('prod/db', {
    owner: 'payments', environment: 'prod', tags: ['pci', 'db'], custom: { ticket: 'OPS-1' },
    rotationIntervalMs: 30 * DAY, maxVersions: 2
  })
  assert.equal(m.owner, 'payments')
  assert.equal(m.environment, 'prod')
  assert.deepEqual([...m.tags].sort(), ['db', 'pci'])
  assert.deepEqual(m.custom, { ticket: 'OPS-1' })
  assert.equal(m.rotationIntervalMs, 30 * DAY)
  assert.equal(m.maxVersions, 2)
  assert.equal(m.oldestVersion, 3, 'lowering maxVersions prunes at once')
  m = await s.updateMetadata('prod/db', { owner: 'platform', clear: ['tags', 'environment', 'max_versions'] })
  assert.equal(m.owner, 'platform')
  assert.equal(m.environment, null)
  assert.deepEqual(m.tags, [])
  assert.deepEqual(m.custom, { ticket: 'OPS-1' })
  assert.equal(m.maxVersions, null)
  assert.deepEqual(await s.metadata('prod/db'), m)
})

test('bad metadata updates are typed errors', async () => {
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32) })
  const s = store.secrets()
  await s.put('prod/db', 'pw')
  await assert.rejects(s.updateMetadata('prod/db', { clear: ['path'] }), sr.InvalidArgument)
  await assert.rejects(s.updateMetadata('prod/db', { owner: 'x', clear: ['owner'] }), sr.InvalidArgument)
  await assert.rejects(s.updateMetadata('prod/db', { rotationIntervalMs: -1 }), sr.InvalidArgument)
  await assert.rejects(s.updateMetadata('prod/db', { maxVersions: 1.5 }), sr.InvalidArgument)
  await assert.rejects(s.updateMetadata('prod/nope', { owner: 'x' }), sr.SecretNotFound)
  await assert.rejects(s.updateMetadata('Bad Path', { owner: 'x' }), sr.StrongroomError)
  await assert.rejects(s.updateMetadata('prod/db', { owner: 5 }), TypeError)
  await assert.rejects(s.updateMetadata('prod/db', { tags: 'pci' }), TypeError)
  await assert.rejects(s.updateMetadata('prod/db', { custom: { n: 1 } }), TypeError)
  await assert.rejects(s.updateMetadata('prod/db'), TypeError)

  // Through a principal: needs `update`.
  const audit = await store.openAuditLog({ memory: true })
  const reader = store.asPrincipal('r', [Policy.fromToml('name = "r"\n[[path]]\npattern = "prod/*"\ncapabilities = ["read"]\n')], audit)
  await assert.rejects(reader.updateMetadata('prod/db', { owner: 'x' }), sr.PolicyDenied)
  const admin = store.asPrincipal('a', [Policy.fromToml('name = "a"\n[[path]]\npattern = "prod/*"\ncapabilities = ["read", "update"]\n')], audit)
  assert.equal((await admin.updateMetadata('prod/db', { owner: 'x' })).owner, 'x')
})

test('inventory: metadata, overdue rotations and last reads from the verified audit file, filtered', async () => {
  const dir = tempDir('sr-inventory-')
  const file = path.join(dir, 'audit.jsonl')
  const clock = Clock.manual(1_700_000_000_000)
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32), clock })
  const s = store.secrets()
  await s.put('prod/db', 'a')
  await s.put('prod/api', 'b')
  await s.put('dev/db', 'c')
  await s.updateMetadata('prod/db', { owner: 'payments', environment: 'prod', tags: ['pci'], rotationIntervalMs: DAY })
  await s.updateMetadata('prod/api', { owner: 'web', environment: 'prod' })
  const audit = await store.openAuditLog({ file })
  const app = store.asPrincipal('app', [Policy.fromToml('name = "app"\n[[path]]\npattern = "prod/*"\ncapabilities = ["read"]\n')], audit)
  await app.get('prod/api')
  const readAt = clock.now()
  clock.advance(2 * DAY)

  const all = await store.inventory('')
  assert.deepEqual(all.map((e) => e.metadata.path).sort(), ['dev/db', 'prod/api', 'prod/db'])
  for (const e of all) assert.equal(e.lastReadAt, null)
  const prod = await store.inventory('prod/', { auditFile: file })
  assert.equal(prod.length, 2)
  const api = prod.find((e) => e.metadata.path === 'prod/api')
  assert.equal(api.lastReadAt.getTime(), readAt)
  assert.equal(api.rotationOverdue, false)
  const db = prod.find((e) => e.metadata.path === 'prod/db')
  assert.equal(db.rotationOverdue, true)
  assert.equal(db.metadata.owner, 'payments')

  const paths = async (opts) => (await store.inventory('', opts)).map((e) => e.metadata.path).sort()
  assert.deepEqual(await paths({ owner: 'payments' }), ['prod/db'])
  assert.deepEqual(await paths({ environment: 'prod' }), ['prod/api', 'prod/db'])
  assert.deepEqual(await paths({ tags: ['pci'] }), ['prod/db'])
  assert.deepEqual(await paths({ overdue: true }), ['prod/db'])
  assert.deepEqual(await paths({ auditFile: file, unreadForMs: DAY }), ['dev/db', 'prod/api', 'prod/db'])
  assert.deepEqual(await paths({ auditFile: file, unreadForMs: 3 * DAY }), ['dev/db', 'prod/db'])

  // An edited audit file is refused, not believed.
  const lines = fs.readFileSync(file, 'utf8')
  fs.writeFileSync(file, lines.replace('prod/api', 'prod/apx'))
  await assert.rejects(store.inventory('', { auditFile: file }), sr.AuditChainBroken)
  await assert.rejects(store.inventory('', { auditFile: path.join(dir, 'missing.jsonl') }), sr.AuditError)
  await assert.rejects(store.inventory('', { unreadForMs: -5 }), sr.InvalidArgument)
  await assert.rejects(store.inventory('', { tags: 'pci' }), TypeError)
  await assert.rejects(store.inventory(5), TypeError)
  await store.close()
  await assert.rejects(store.inventory(''), sr.Closed)
})
