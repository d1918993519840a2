'use strict'
// The shared binding scenarios (bindings/SCENARIOS.md), S3 to S5.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const sr = require('strongroom')
const { Strongroom, Storage } = sr

const ctx = { path: 'prod/app/db', version: 1 }

function tmpdir () {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-node-'))
}

test('S3 lifecycle: init, seal/open, put/get, seal, unseal, typed failures', async () => {
  const dir = tmpdir()
  const keyFile = path.join(dir, 'root.key')
  await sr.generateKeyFile(keyFile)
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600)

  const storage = Storage.memory()
  assert.equal(storage.backend, 'memory')
  assert.equal(await storage.isInitialized(), false)
  const store = await Strongroom.init(storage, { keyFile })
  assert.equal(await storage.isInitialized(), true)

  const sealed = await store.sealValue('postgres://app:pw@db/app', ctx)
  assert.ok(Buffer.isBuffer(sealed))
  assert.equal(sr.sealedKeyVersion(sealed), 1)
  assert.equal((await store.openValue(sealed, ctx)).reveal().toString(), 'postgres://app:pw@db/app')

  await store.putSealed('s/app/db', Buffer.from('hunter2'), ctx)
  assert.equal((await store.getSealed('s/app/db', ctx)).reveal().toString(), 'hunter2')
  assert.equal(await store.getSealed('s/app/missing', ctx), null)
  // A record read under another context does not open.
  await assert.rejects(store.getSealed('s/app/db', { path: 'prod/app/other', version: 1 }),
    sr.DecryptionFailed)

  await assert.rejects(Strongroom.init(storage, { keyFile }), sr.AlreadyInitialized)

  store.seal()
  assert.equal(store.isSealed, true)
  await assert.rejects(store.openValue(sealed, ctx), sr.Sealed)
  await assert.rejects(store.sealValue('x', ctx), sr.Sealed)
  assert.throws(() => store.keys(), sr.Sealed)

  await store.unseal({ keyFile })
  assert.equal(store.isSealed, false)
  assert.equal((await store.getSealed('s/app/db', ctx)).reveal().toString(), 'hunter2')
  assert.equal((await store.openValue(sealed, ctx)).reveal().toString(), 'postgres://app:pw@db/app')

  // A second handle on the same storage through Strongroom.unseal/open.
  const again = await Strongroom.open(storage, { keyFile })
  assert.equal((await again.getSealed('s/app/db', ctx)).reveal().toString(), 'hunter2')

  const wrong = await assert.rejects(Strongroom.unseal(storage, { key: crypto.randomBytes(32) }),
    sr.ProtectorError)
  assert.equal(wrong, undefined)
  try {
    await Strongroom.unseal(storage, { key: crypto.randomBytes(32) })
  } catch (e) {
    assert.equal(e.code, 'protector.unwrap_failed')
    assert.equal(e.protector, 'software')
    assert.equal(e.legacyCode, 'ERR_STRONGROOM_PROTECTOR')
  }
  await assert.rejects(Strongroom.unseal(Storage.memory(), { keyFile }), sr.NotInitialized)
  await assert.rejects(Strongroom.unseal(':memory:', { keyFile }), sr.NotInitialized)
  fs.rmSync(dir, { recursive: true })
})

test('S4 keyring: rotate, retire, destroy refused while in use, rewrap, destroy', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const records = ['s/a', 's/b', 's/c']
  for (const [i, k] of records.entries()) {
    await store.putSealed(k, `value ${i}`, { path: k.slice(2), version: i })
  }
  const old = await store.sealValue('old', ctx)
  assert.equal(sr.sealedKeyVersion(old), 1)

  const k2 = await store.rotate()
  assert.equal(k2.version, 2)
  assert.equal(k2.state, 'primary')
  assert.ok(k2.created instanceof Date)
  assert.deepEqual(store.keys().map((k) => [k.version, k.state]), [[1, 'active'], [2, 'primary']])
  assert.equal(sr.sealedKeyVersion(await store.sealValue('new', ctx)), 2)
  assert.equal((await store.openValue(old, ctx)).reveal().toString(), 'old')

  await store.setMinDecryptionVersion(2)
  const retired = await store.openValue(old, ctx).catch((e) => e)
  assert.ok(retired instanceof sr.KeyVersionRetired)
  assert.equal(retired.version, 1)
  assert.equal(retired.min_decryption_version, 2)
  const inUse = await store.destroyKey(1).catch((e) => e)
  assert.ok(inUse instanceof sr.KeyInUse, inUse)
  assert.equal(inUse.records, 3)
  await assert.rejects(store.promote(1), sr.InvalidKeyTransition)

  await store.setMinDecryptionVersion(1)
  const report = await store.rewrap()
  assert.deepEqual(report, { scanned: 3, rewrapped: 3, unreadable: [], targetVersion: 2, remaining: 0 })
  await store.setMinDecryptionVersion(2)
  await store.destroyKey(1)
  for (const [i, k] of records.entries()) {
    const got = await store.getSealed(k, { path: k.slice(2), version: i })
    assert.equal(got.reveal().toString(), `value ${i}`)
  }
  assert.deepEqual(store.keys().map((k) => [k.version, k.state]), [[1, 'destroyed'], [2, 'primary']])
  await assert.rejects(store.promote(7), sr.UnknownKeyVersion)
})

test('S5 bad input raises typed errors', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  await assert.rejects(store.openValue(Buffer.from('garbage'), ctx), sr.MalformedSealedValue)

  const sealed = await store.sealValue('x', ctx)
  const relabelled = Buffer.from(sealed)
  relabelled.writeUInt32BE(99, 4)
  const e = await store.openValue(relabelled, ctx).catch((err) => err)
  assert.ok(e instanceof sr.UnknownKeyVersion)
  assert.equal(e.version, 99)
  assert.equal(e.latest, 1)

  assert.throws(() => sr.sealWithKey(Buffer.alloc(31), 'aes-256-gcm', 1, 'p', 1, 'x'), sr.InvalidArgument)
  assert.throws(() => sr.sealWithKey(Buffer.alloc(32), 'rot13', 1, 'p', 1, 'x'), sr.InvalidArgument)
  await assert.rejects(Strongroom.open(':memory:', { key: Buffer.alloc(31) }), sr.InvalidArgument)
  await assert.rejects(Strongroom.open(':memory:', {}), sr.InvalidArgument)

  const dir = tmpdir()
  const keyFile = path.join(dir, 'loose.key')
  await sr.generateKeyFile(keyFile)
  await assert.rejects(sr.generateKeyFile(keyFile), (err) =>
    err instanceof sr.KeyFileError && err.code === 'key_file.exists' && err.path === keyFile)
  fs.chmodSync(keyFile, 0o644)
  await assert.rejects(Strongroom.open(':memory:', { keyFile }), (err) =>
    err instanceof sr.KeyFileError && err.code === 'key_file.loose_permissions' && /chmod 600/.test(err.message))
  fs.rmSync(dir, { recursive: true })

  await assert.rejects(store.putSealed('app/db', 'x', ctx), sr.InvalidArgument)
  await assert.rejects(store.sealValue('x', { path: 'p', version: -1 }), sr.InvalidArgument)
  await assert.rejects(store.sealValue('x', { path: 'p', version: 1.5 }), sr.InvalidArgument)
  await assert.rejects(store.sealValue('x', { path: 'p', version: 2n ** 64n }), sr.InvalidArgument)
  await assert.rejects(store.sealValue('x', { path: 'p' }), TypeError)
  await assert.rejects(store.sealValue(42, ctx), TypeError)
})

test('context versions above 2^53 work as bigints', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const big = { path: 'p', version: 2n ** 64n - 1n }
  const sealed = await store.sealValue('big', big)
  assert.equal((await store.openValue(sealed, big)).reveal().toString(), 'big')
  await assert.rejects(store.openValue(sealed, { path: 'p', version: 2n ** 64n - 2n }), sr.DecryptionFailed)
  // A number and a bigint of the same value are the same context.
  const small = await store.sealValue('five', { path: 'p', version: 5 })
  assert.equal((await store.openValue(small, { path: 'p', version: 5n })).reveal().toString(), 'five')
})

test('a chacha20-poly1305 store seals with that algorithm', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32), algorithm: 'chacha20-poly1305' })
  const sealed = await store.sealValue('x', ctx)
  assert.equal(sealed[3], 2)
  assert.equal(store.keys()[0].algorithm, 'chacha20-poly1305')
  await assert.rejects(Strongroom.open(':memory:', { key: crypto.randomBytes(32), algorithm: 'des' }),
    sr.InvalidArgument)
})

test('large values seal off the main thread and round-trip', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const big = crypto.randomBytes(1 << 20)
  const pending = store.sealValue(big, ctx)
  assert.ok(pending instanceof Promise)
  const sealed = await pending
  assert.equal(sealed.length, big.length + 36)
  assert.ok((await store.openValue(sealed, ctx)).reveal().equals(big))
})

test('concurrent seals get distinct nonces and all open', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const n = 2000
  const sealed = await Promise.all(Array.from({ length: n }, (_, i) =>
    store.sealValue(`v${i}`, { path: 'p', version: i })))
  const nonces = new Set(sealed.map((s) => s.subarray(8, 20).toString('hex')))
  assert.equal(nonces.size, n)
  const opened = await Promise.all(sealed.map((s, i) => store.openValue(s, { path: 'p', version: i })))
  opened.forEach((o, i) => assert.equal(o.reveal().toString(), `v${i}`))
})

test('SQLite: Strongroom.open(file, { keyFile }) persists across processes', async () => {
  const dir = tmpdir()
  const db = path.join(dir, 'store.db')
  const keyFile = path.join(dir, 'root.key')
  await sr.generateKeyFile(keyFile)
  const store = await Strongroom.open(db, { keyFile })
  assert.ok(fs.existsSync(db))
  await store.putSealed('s/app/db', 'persisted value', ctx)
  await store.rotate()
  await assert.rejects(Strongroom.init(db, { keyFile }), sr.AlreadyInitialized)
  const storage = await Storage.open(db)
  assert.equal(storage.backend, 'sqlite')
  assert.equal(await storage.isInitialized(), true)

  // Another process unseals the same file and reads the record.
  const { execFileSync } = require('node:child_process')
  const script = `
    const { Strongroom } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
    Strongroom.unseal(process.argv[1], { keyFile: process.argv[2] }).then(async (s) => {
      const v = await s.getSealed('s/app/db', { path: 'prod/app/db', version: 1 })
      process.stdout.write(v.reveal().toString() + ' ' + s.keys().length)
    }).catch((e) => { console.error(e); process.exit(1) })`
  const out = execFileSync(process.execPath, ['-e', script, db, keyFile], { encoding: 'utf8' })
  assert.equal(out, 'persisted value 2')

  await assert.rejects(Strongroom.unseal(db, { key: crypto.randomBytes(32) }), sr.ProtectorError)
  fs.rmSync(dir, { recursive: true })
})

test('SQLite: a file that is not a store, or cannot be created, is a StorageError', async () => {
  const dir = tmpdir()
  const junk = path.join(dir, 'junk.db')
  fs.writeFileSync(junk, 'this is not an sqlite database, just text that is long enough '.repeat(20))
  const e = await Strongroom.open(junk, { key: crypto.randomBytes(32) }).catch((err) => err)
  assert.ok(e instanceof sr.StorageError, e)
  assert.equal(e.backend, 'sqlite')
  assert.equal(e.code, 'storage.corrupt')
  const missing = await Storage.open(path.join(dir, 'no', 'such', 'dir', 'x.db')).catch((err) => err)
  assert.ok(missing instanceof sr.StorageError, missing)
  fs.rmSync(dir, { recursive: true })
})

test('sealing past an encryption reservation block renews it', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  assert.equal(store.keys()[0].encryptionsReserved, 65536)
  const value = Buffer.alloc(16)
  let last
  for (let i = 0; i < 65536 + 10; i++) last = await store.sealValue(value, ctx)
  assert.equal(store.keys()[0].encryptionsReserved, 2 * 65536)
  assert.ok((await store.openValue(last, ctx)).reveal().equals(value))
})

test('SQLite: a seal that must renew the reservation in storage resolves later', async () => {
  const dir = tmpdir()
  const store = await Strongroom.open(path.join(dir, 'r.db'), { key: crypto.randomBytes(32) })
  const value = Buffer.alloc(16, 7)
  for (let i = 0; i < 65536 - 1; i++) await store.sealValue(value, ctx)
  // The reservation is used up: the next seals write a new block to SQLite.
  const sealed = await Promise.all(Array.from({ length: 50 }, () => store.sealValue(value, ctx)))
  assert.equal(store.keys()[0].encryptionsReserved, 2 * 65536)
  assert.equal(new Set(sealed.map((s) => s.subarray(8, 20).toString('hex'))).size, 50)
  for (const s of sealed) assert.ok((await store.openValue(s, ctx)).reveal().equals(value))
  // Another handle on the file sees the persisted reservation.
  const again = await Strongroom.unseal(path.join(dir, 'r.db'), { key: Buffer.alloc(32) }).catch((e) => e)
  assert.ok(again instanceof sr.ProtectorError)
  fs.rmSync(dir, { recursive: true })
})
