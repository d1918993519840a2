'use strict'
// Shamir shares (srs1-... texts), a store whose root key only the shares
// rebuild, and root-key rotation (strongroom-host's shamir).
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const util = require('node:util')
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
const { Strongroom, Storage, Secret, ShamirProtector, shamirSplit, shamirCombine } = sr

test('shamirSplit / shamirCombine: any threshold shares rebuild the secret', () => {
  const shares = shamirSplit('launch code', 2, 3)
  assert.equal(shares.length, 3)
  for (const s of shares) assert.match(s, /^srs1-/)
  for (const pair of [[0, 1], [1, 2], [0, 2]]) {
    const back = shamirCombine(pair.map((i) => shares[i]))
    assert.ok(back instanceof Secret)
    assert.equal(back.reveal().toString(), 'launch code')
  }
  const bytes = crypto.randomBytes(48)
  assert.deepEqual(shamirCombine(shamirSplit(new Secret(Buffer.from(bytes)), 3, 5).slice(1, 4)).reveal(), bytes)
})

test('bad Shamir input is a typed error, never a crash', () => {
  const shares = shamirSplit(Buffer.from('k'), 2, 3)
  assert.throws(() => shamirCombine([shares[0]]), sr.ShamirTooFewShares)
  assert.throws(() => shamirCombine([]), sr.ShamirError)
  assert.throws(() => shamirCombine([shares[0], shares[0]]), sr.ShamirError)
  const other = shamirSplit('other', 2, 3)
  assert.throws(() => shamirCombine([shares[0], other[1]]), sr.ShamirDifferentSplits)
  const typo = shares[1].slice(0, -1) + (shares[1].endsWith('A') ? 'B' : 'A')
  assert.throws(() => shamirCombine([shares[0], typo]), sr.ShamirError)
  assert.throws(() => shamirCombine(['not a share', shares[1]]), sr.ShamirError)
  assert.throws(() => shamirSplit('k', 1, 3), sr.ShamirInvalidParameters)
  assert.throws(() => shamirSplit('k', 4, 3), sr.ShamirInvalidParameters)
  assert.throws(() => shamirSplit('', 2, 3), sr.ShamirError)
  assert.throws(() => shamirSplit('k', 2, 300), sr.InvalidArgument)
  assert.throws(() => shamirSplit('k', 2.5, 3), TypeError)
  assert.throws(() => shamirCombine('srs1-x'), TypeError)
  assert.throws(() => ShamirProtector.generate(0, 3), sr.ShamirInvalidParameters)
  assert.throws(() => ShamirProtector.fromShares([shares[0]]), sr.ShamirTooFewShares)
  // A 1-byte secret is not a 32-byte key-encryption key.
  assert.throws(() => ShamirProtector.fromShares(shares.slice(0, 2)), sr.ShamirInvalidParameters)
})

test('a store created with a Shamir protector unseals with any threshold of its shares, not with fewer or others', async () => {
  const storage = Storage.memory()
  const { protector, shares } = ShamirProtector.generate(3, 5)
  assert.equal(shares.length, 5)
  assert.equal(protector.threshold, 3)
  assert.match(protector.splitId, /^[0-9a-f]+$/)
  assert.ok(!util.inspect(protector).includes(shares[0]))
  const store = await Strongroom.init(storage, { shamir: protector })
  await store.secrets().put('app/db', 'pw')
  store.seal()
  await store.unseal({ shamir: ShamirProtector.fromShares([shares[4], shares[0], shares[2]]) })
  assert.equal((await store.secrets().get('app/db')).value.reveal().toString(), 'pw')
  await store.close()

  const again = await Strongroom.unseal(storage, { shamir: ShamirProtector.fromShares(shares.slice(1, 4)) })
  assert.equal((await again.secrets().get('app/db')).value.reveal().toString(), 'pw')
  await again.close()
  const stranger = ShamirProtector.generate(2, 2).protector
  await assert.rejects(Strongroom.unseal(storage, { shamir: stranger }), sr.StrongroomError)
  await assert.rejects(Strongroom.unseal(storage, { key: crypto.randomBytes(32), shamir: stranger }), sr.InvalidArgument)
  await assert.rejects(Strongroom.unseal(storage, { shamir: shares }), TypeError)
})

test('rotateRootKey moves a store from a software key to Shamir shares and to a key file', async () => {
  const dir = tempDir('sr-rootkey-')
  const db = path.join(dir, 'store.db')
  const key = crypto.randomBytes(32)
  const store = await Strongroom.open(db, { key })
  await store.secrets().put('app/x', 'v1')
  const { protector, shares } = ShamirProtector.generate(2, 3)
  await store.rotateRootKey({ shamir: protector })
  await store.close()
  await assert.rejects(Strongroom.unseal(db, { key }), sr.StrongroomError)
  const viaShares = await Strongroom.unseal(db, { shamir: ShamirProtector.fromShares([shares[2], shares[1]]) })
  assert.equal((await viaShares.secrets().get('app/x')).value.reveal().toString(), 'v1')

  const keyFile = path.join(dir, 'root.key')
  await sr.generateKeyFile(keyFile)
  await viaShares.rotateRootKey({ keyFile })
  await viaShares.close()
  await assert.rejects(Strongroom.unseal(db, { shamir: ShamirProtector.fromShares(shares.slice(0, 2)) }), sr.StrongroomError)
  const viaFile = await Strongroom.unseal(db, { keyFile })
  assert.equal((await viaFile.secrets().get('app/x')).value.reveal().toString(), 'v1')
  const key2 = crypto.randomBytes(32)
  await viaFile.rotateRootKey({ key: key2 })
  await viaFile.close()
  const viaKey = await Strongroom.unseal(db, { key: key2 })
  assert.equal((await viaKey.secrets().get('app/x')).value.reveal().toString(), 'v1')

  await assert.rejects(viaKey.rotateRootKey({ key: Buffer.alloc(31) }), sr.InvalidArgument)
  await assert.rejects(viaKey.rotateRootKey({}), sr.InvalidArgument)
  await assert.rejects(viaKey.rotateRootKey({ pkcs11: {} }), TypeError)
  viaKey.seal()
  await assert.rejects(viaKey.rotateRootKey({ key: key2 }), sr.Sealed)
  await viaKey.close()
  await assert.rejects(viaKey.rotateRootKey({ key: key2 }), sr.Closed)
})
