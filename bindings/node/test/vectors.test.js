'use strict'
// The shared sealed-format vectors (docs/vectors/sealed-v1.json), byte for byte.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { openSealed, sealWithKey, DecryptionFailed, MalformedSealedValue, InvalidArgument } =
  require('strongroom')
const { repo, readVectors, hex } = require('./helpers.js')

const doc = readVectors(path.join(repo, 'docs', 'vectors', 'sealed-v1.json'))

test('the vector file has vectors for both algorithms', () => {
  assert.equal(doc.format, 'strongroom sealed value v1')
  const algs = new Set(doc.vectors.map((v) => v.algorithm))
  assert.deepEqual([...algs].sort(), ['aes-256-gcm', 'chacha20-poly1305'])
  assert.ok(doc.vectors.some((v) => typeof v.version === 'bigint'), 'a version above 2^53 is kept exact')
})

for (const v of doc.vectors) {
  test(`vector ${v.name} opens to its plaintext`, () => {
    const secret = openSealed(hex(v.key), v.algorithm, v.path, v.version, hex(v.sealed))
    assert.deepEqual(secret.reveal(), hex(v.plaintext))
  })

  test(`vector ${v.name}: header fields are where the format says`, () => {
    const sealed = hex(v.sealed)
    assert.equal(sealed.subarray(0, 2).toString('latin1'), 'SR')
    assert.equal(sealed[2], 1)
    assert.equal(sealed[3], v.algorithm === 'aes-256-gcm' ? 1 : 2)
    assert.equal(sealed.readUInt32BE(4), v.key_version)
    assert.deepEqual(sealed.subarray(8, 20), hex(v.nonce))
    assert.equal(sealed.length, 36 + hex(v.plaintext).length)
  })

  test(`vector ${v.name}: any flipped byte fails to open`, () => {
    const sealed = hex(v.sealed)
    for (const i of [8, 19, 20, sealed.length - 1]) {
      const t = Buffer.from(sealed)
      t[i] ^= 1
      assert.throws(() => openSealed(hex(v.key), v.algorithm, v.path, v.version, t), DecryptionFailed)
    }
  })

  test(`vector ${v.name}: another path or version fails to open`, () => {
    assert.throws(() => openSealed(hex(v.key), v.algorithm, v.path + 'x', v.version, hex(v.sealed)),
      DecryptionFailed)
    const other = typeof v.version === 'bigint' ? v.version - 1n : v.version + 1
    assert.throws(() => openSealed(hex(v.key), v.algorithm, v.path, other, hex(v.sealed)),
      DecryptionFailed)
  })

  test(`vector ${v.name}: sealWithKey gives the same framing with a fresh nonce`, () => {
    const plain = hex(v.plaintext)
    const a = sealWithKey(hex(v.key), v.algorithm, v.key_version, v.path, v.version, plain)
    const b = sealWithKey(hex(v.key), v.algorithm, v.key_version, v.path, v.version, plain)
    assert.equal(a.length, hex(v.sealed).length)
    assert.deepEqual(a.subarray(0, 8), hex(v.sealed).subarray(0, 8))
    assert.notDeepEqual(a.subarray(8, 20), b.subarray(8, 20))
    assert.deepEqual(openSealed(hex(v.key), v.algorithm, v.path, v.version, a).reveal(), plain)
  })
}

test('framing errors are MalformedSealedValue, before any decryption', () => {
  const v = doc.vectors[1]
  const sealed = hex(v.sealed)
  const open = (b) => openSealed(hex(v.key), v.algorithm, v.path, v.version, b)
  assert.throws(() => open(sealed.subarray(0, 35)), MalformedSealedValue)
  const badMagic = Buffer.from(sealed); badMagic[0] = 0x58
  assert.throws(() => open(badMagic), MalformedSealedValue)
  const badFormat = Buffer.from(sealed); badFormat[2] = 2
  assert.throws(() => open(badFormat), MalformedSealedValue)
  const badAlg = Buffer.from(sealed); badAlg[3] = 9
  assert.throws(() => open(badAlg), MalformedSealedValue)
})

test('a key that is not 32 bytes is InvalidArgument', () => {
  assert.throws(() => sealWithKey(Buffer.alloc(16), 'aes-256-gcm', 1, 'a', 1, 'x'), InvalidArgument)
  assert.throws(() => sealWithKey(Buffer.alloc(32), 'aes-128-gcm', 1, 'a', 1, 'x'), InvalidArgument)
})
