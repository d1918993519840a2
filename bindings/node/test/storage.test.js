'use strict'
// Store locations (strongroom-host's HostStorage): memory:, a path,
// sqlite:<path>, postgres:// URLs (test/postgres.test.js), bad schemes.
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
const { Strongroom, Storage } = sr

test('memory:, :memory:, sqlite:<path> and a plain path open the backend they name', async () => {
  for (const loc of ['memory:', ':memory:']) {
    const s = await Storage.open(loc)
    assert.equal(s.backend, 'memory')
    await s.close()
  }
  const dir = tempDir('sr-loc-')
  const key = crypto.randomBytes(32)
  const store = await Strongroom.open(`sqlite:${path.join(dir, 'a.db')}`, { key })
  await store.secrets().put('app/x', 'one')
  await store.close()
  const again = await Storage.open(path.join(dir, 'a.db'))
  assert.equal(again.backend, 'sqlite')
  const reopened = await Strongroom.unseal(again, { key })
  assert.equal((await reopened.secrets().get('app/x')).value.reveal().toString(), 'one')
  await reopened.close()
  await again.close()
  const mem = await Strongroom.open('memory:', { key })
  await mem.secrets().put('app/y', 'two')
  assert.deepEqual(await mem.secrets().list('app/'), ['y'])
  await mem.close()
})

test('an unknown scheme or an empty location is InvalidArgument that never echoes the location', async () => {
  for (const loc of ['', 'sqlite:', 'mysql://app:hunter2@db/x']) {
    const e = await Storage.open(loc).catch((err) => err)
    assert.ok(e instanceof sr.InvalidArgument, `${loc}: ${e && e.name}`)
    assert.ok(!e.message.includes('hunter2'))
  }
  await assert.rejects(Strongroom.open('mysql://app:hunter2@db/x', { key: crypto.randomBytes(32) }), sr.InvalidArgument)
  await assert.rejects(Storage.open(42), TypeError)
})

test('an unreachable PostgreSQL server is StorageError storage.unavailable without the password', async () => {
  // Port 1 on localhost: nothing listens.
  const e = await Storage.open('postgres://app:hunter2@127.0.0.1:1/db').catch((err) => err)
  assert.ok(e instanceof sr.StorageError, `${e && e.name}: ${e && e.message}`)
  assert.equal(e.code, 'storage.unavailable')
  assert.equal(e.backend, 'postgres')
  assert.ok(!e.message.includes('hunter2') && !e.detail.includes('hunter2'))
})
