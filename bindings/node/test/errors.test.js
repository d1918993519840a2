'use strict'
// Typed errors: one class per core variant, each with a stable code.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const sr = require('strongroom')

const expected = {
  DecryptionFailed: 'ERR_STRONGROOM_DECRYPTION_FAILED',
  MalformedSealedValue: 'ERR_STRONGROOM_MALFORMED_SEALED_VALUE',
  UnknownKeyVersion: 'ERR_STRONGROOM_UNKNOWN_KEY_VERSION',
  KeyVersionRetired: 'ERR_STRONGROOM_KEY_VERSION_RETIRED',
  InvalidKeyTransition: 'ERR_STRONGROOM_INVALID_KEY_TRANSITION',
  KeyInUse: 'ERR_STRONGROOM_KEY_IN_USE',
  InvalidPath: 'ERR_STRONGROOM_INVALID_PATH',
  Sealed: 'ERR_STRONGROOM_SEALED',
  AlreadyInitialized: 'ERR_STRONGROOM_ALREADY_INITIALIZED',
  NotInitialized: 'ERR_STRONGROOM_NOT_INITIALIZED',
  UnsealFailed: 'ERR_STRONGROOM_UNSEAL_FAILED',
  KeyFileError: 'ERR_STRONGROOM_KEY_FILE',
  ProtectorError: 'ERR_STRONGROOM_PROTECTOR',
  StorageError: 'ERR_STRONGROOM_STORAGE',
  StorageConflict: 'ERR_STRONGROOM_STORAGE_CONFLICT',
  CorruptRecord: 'ERR_STRONGROOM_CORRUPT_RECORD',
  RandomFailure: 'ERR_STRONGROOM_RANDOM',
  InvalidArgument: 'ERR_STRONGROOM_INVALID_ARGUMENT',
  SecretWiped: 'ERR_STRONGROOM_SECRET_WIPED',
  PolicyDenied: 'ERR_STRONGROOM_POLICY_DENIED',
  LeaseExpired: 'ERR_STRONGROOM_LEASE_EXPIRED',
  CasConflict: 'ERR_STRONGROOM_CAS_CONFLICT'
}

test('every error class extends StrongroomError and Error, with a distinct stable code', () => {
  const codes = new Set()
  for (const [name, code] of Object.entries(expected)) {
    const cls = sr[name]
    assert.equal(typeof cls, 'function', name)
    assert.equal(cls.name, name)
    assert.equal(cls.code, code)
    const e = new cls('m')
    assert.ok(e instanceof sr.StrongroomError)
    assert.ok(e instanceof Error)
    assert.equal(e.code, code)
    assert.equal(e.name, name)
    assert.equal(e.message, 'm')
    codes.add(code)
  }
  assert.equal(codes.size, Object.keys(expected).length)
  assert.equal(new sr.StrongroomError('x').code, 'ERR_STRONGROOM')
})

test('errors from the core arrive as their class with message, code and details', async () => {
  const store = await sr.Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const sealed = await store.sealValue('top secret value', { path: 'a', version: 1 })
  const e = await store.openValue(sealed, { path: 'b', version: 1 }).catch((err) => err)
  assert.ok(e instanceof sr.DecryptionFailed)
  assert.equal(e.code, 'ERR_STRONGROOM_DECRYPTION_FAILED')
  assert.equal(e.message, 'decryption failed')
  assert.ok(!e.message.includes('\u0001'), 'no wire marker leaks into messages')
  assert.match(e.stack, /DecryptionFailed: decryption failed/)
  // The whole error, as printed, never carries the plaintext.
  const printed = require('node:util').inspect(e) + JSON.stringify(e)
  assert.ok(!printed.includes('top secret'))

  const relabelled = Buffer.from(sealed)
  relabelled.writeUInt32BE(3, 4)
  const u = await store.openValue(relabelled, { path: 'a', version: 1 }).catch((err) => err)
  assert.deepEqual([u.constructor, u.version, u.latest], [sr.UnknownKeyVersion, 3, 1])
  assert.match(u.message, /unknown key version 3/)
})

test('synchronous low-level calls throw typed errors too', () => {
  assert.throws(() => sr.openSealed(Buffer.alloc(32), 'aes-256-gcm', 'p', 1, Buffer.alloc(10)),
    (e) => e instanceof sr.MalformedSealedValue && e.code === 'ERR_STRONGROOM_MALFORMED_SEALED_VALUE')
  assert.throws(() => sr.sealedKeyVersion(Buffer.from('nope')), sr.MalformedSealedValue)
})

test('non-Strongroom errors pass through unchanged', async () => {
  const store = await sr.Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  await assert.rejects(store.openValue('not a buffer', { path: 'a', version: 1 }), TypeError)
})

test('every error class names a core Error::kind (codes are ERR_STRONGROOM_ + the kind)', () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const src = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'crates', 'strongroom', 'src', 'error.rs'), 'utf8')
  const kinds = [...src.slice(src.indexOf('pub fn kind(')).matchAll(/=> "([a-z_]+)"/g)].map((m) => m[1])
  assert.ok(kinds.length >= 40)
  // The one code kept from before the kinds existed.
  const codes = new Set(kinds.map((k) =>
    k === 'cas_mismatch' ? 'ERR_STRONGROOM_CAS_CONFLICT' : `ERR_STRONGROOM_${k.toUpperCase()}`))
  // The binding's own: a wiped Secret, and a call after close().
  const jsOnly = new Set(['ERR_STRONGROOM', 'ERR_STRONGROOM_SECRET_WIPED', 'ERR_STRONGROOM_CLOSED'])
  const classes = Object.values(sr).filter((v) => typeof v === 'function' && v.code)
  assert.ok(classes.length >= 28)
  for (const cls of classes) {
    if (!jsOnly.has(cls.code)) assert.ok(codes.has(cls.code), `${cls.name}: ${cls.code} is no core kind`)
  }
  // The native side derives the code from the kind, keeping CAS_CONFLICT.
  const lib = fs.readFileSync(path.join(__dirname, '..', 'src', 'lib.rs'), 'utf8')
  assert.match(lib, /"cas_mismatch" => "ERR_STRONGROOM_CAS_CONFLICT"/)
  assert.match(lib, /format!\("ERR_STRONGROOM_\{\}", kind\.to_ascii_uppercase\(\)\)/)
})
