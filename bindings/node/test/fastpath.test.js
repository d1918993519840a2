'use strict'
// The sealValue / openValue fast path for small values: stores named by id,
// the context path read into a stack buffer (or a String when long), values
// sealed and opened straight into JavaScript-owned Buffers.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const sr = require('strongroom')
const { Strongroom, Storage } = sr

test('openValue decrypts into a Buffer of exactly the plaintext; failures are typed', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const ctx = { path: 'prod/app/db', version: 1 }
  const plain = crypto.randomBytes(1024)
  const sealed = await store.sealValue(plain, ctx)
  assert.equal(sealed.length, 1024 + 36)
  const before = Buffer.from(sealed)
  const s = await store.openValue(sealed, ctx)
  assert.ok(s.reveal().equals(plain))
  assert.equal(s.reveal().length, 1024)
  assert.ok(sealed.equals(before), 'the sealed value is not modified')
  // A Uint8Array view works the same.
  const view = new Uint8Array(sealed.buffer, sealed.byteOffset, sealed.length)
  assert.ok((await store.openValue(view, ctx)).reveal().equals(plain))
  // Empty plaintexts.
  const empty = await store.sealValue('', ctx)
  assert.equal((await store.openValue(empty, ctx)).length, 0)
  // Every framing or authentication failure is typed.
  for (const [bad, cls] of [
    [Buffer.alloc(0), sr.MalformedSealedValue],
    [sealed.subarray(0, 35), sr.MalformedSealedValue],
    [sealed.subarray(0, sealed.length - 1), sr.DecryptionFailed],
    [Buffer.concat([sealed, Buffer.alloc(1)]), sr.DecryptionFailed]
  ]) {
    await assert.rejects(store.openValue(bad, ctx), cls)
  }
  await assert.rejects(store.openValue(sealed, { path: 'prod/app/db', version: 2 }), sr.DecryptionFailed)
})

test('each store opens only with its own keys, whatever order stores are made and dropped in', async () => {
  const stores = []
  for (let i = 0; i < 5; i++) stores.push(await Strongroom.open(':memory:', { key: crypto.randomBytes(32) }))
  const ctx = { path: 'p', version: 1 }
  const sealed = await Promise.all(stores.map((s, i) => s.sealValue(`value ${i}`, ctx)))
  for (let i = 0; i < stores.length; i++) {
    assert.equal((await stores[i].openValue(sealed[i], ctx)).reveal().toString(), `value ${i}`)
    const other = stores[(i + 1) % stores.length]
    await assert.rejects(other.openValue(sealed[i], ctx), sr.DecryptionFailed)
  }
  // Two opens of one storage share the keyring, so each opens the other's values.
  const storage = Storage.memory()
  const key = crypto.randomBytes(32)
  const a = await Strongroom.open(storage, { key })
  const b = await Strongroom.open(storage, { key })
  assert.equal((await b.openValue(await a.sealValue('shared', ctx), ctx)).reveal().toString(), 'shared')
  // seal() / unseal() swap the handle the fast path uses.
  const s = await a.sealValue('again', ctx)
  a.seal()
  await assert.rejects(a.openValue(s, ctx), sr.Sealed)
  await assert.rejects(a.sealValue('x', ctx), sr.Sealed)
  await a.unseal({ key })
  assert.equal((await a.openValue(s, ctx)).reveal().toString(), 'again')
})

test('context paths: long, non-ASCII and wrong types', async () => {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  // Around the 256-byte stack buffer, in 1-, 2- and 4-byte characters (a
  // string V8 cuts at a character boundary must not pass for a whole one).
  const paths = ['', 'a', 'y'.repeat(5000), 'prod/caf\u00e9/\u{1f511}']
  for (let n = 248; n <= 260; n++) {
    paths.push('x'.repeat(n), 'x'.repeat(n % 2) + '\u00e9'.repeat(n >> 1), 'x'.repeat(n % 4) + '\u{1f511}'.repeat(n >> 2))
  }
  for (const path of paths) {
    const ctx = { path, version: 7 }
    const sealed = await store.sealValue('v', ctx)
    assert.equal((await store.openValue(sealed, ctx)).reveal().toString(), 'v', `path of ${path.length}`)
    // The whole path is bound, not a prefix the stack buffer held.
    await assert.rejects(store.openValue(sealed, { path: path + 'z', version: 7 }), sr.DecryptionFailed)
    if (path.length > 0) {
      const shorter = [...path].slice(0, -1).join('')
      await assert.rejects(store.openValue(sealed, { path: shorter, version: 7 }), sr.DecryptionFailed)
    }
  }
  // A sealed value of the low-level API opens through the store's path
  // handling only with the same bytes: the path is encoded as UTF-8.
  const key = crypto.randomBytes(32)
  const low = sr.sealWithKey(key, 'aes-256-gcm', 1, 'caf\u00e9', 1, 'x')
  assert.equal(sr.openSealed(key, 'aes-256-gcm', 'caf\u00e9', 1, low).reveal().toString(), 'x')
  await assert.rejects(store.openValue(Buffer.alloc(40), { path: 42, version: 1 }), TypeError)
  await assert.rejects(store.sealValue('x', { path: null, version: 1 }), TypeError)
})

test('many seals in a row: the reservation renewal falls back to the async path', async () => {
  // 70 000 seals cross the default reservation block (65 536), where the fast
  // path reports that storage must be written first.
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const ctx = { path: 'p', version: 1 }
  const before = store.keys()[0].encryptionsReserved
  let last
  for (let i = 0; i < 70_000; i++) last = await store.sealValue('v', ctx)
  assert.ok(store.keys()[0].encryptionsReserved > before, 'a new block was reserved')
  assert.equal((await store.openValue(last, ctx)).reveal().toString(), 'v')
})
