'use strict'
// Signing keys that never leave (strongroom::signing) through the binding:
// the store's own keys and a principal's checked, audited view of them.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const util = require('node:util')
const sr = require('strongroom')
const { Strongroom, Policy, Signature, SigningKeys } = sr

const POLICY = `
name = "release"
[[path]]
pattern = "release/*"
capabilities = ["create", "sign", "read", "rotate", "update"]
`
const READ_ONLY = `
name = "auditor"
[[path]]
pattern = "release/*"
capabilities = ["read"]
`

async function setup () {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const audit = await store.openAuditLog({ memory: true })
  const keys = store.signingKeys()
  const ci = store.asPrincipal('ci', [Policy.fromToml(POLICY)], audit).signing(keys)
  return { store, audit, keys, ci }
}

test('sign and verify round trip per key type; a tampered message verifies false', async () => {
  const { store, ci } = await setup()
  assert.ok(ci instanceof SigningKeys)
  assert.equal(ci.principal, 'ci')
  const msg = Buffer.from('artifact bytes')
  for (const keyType of ['ed25519', 'ecdsa_p256', 'secp256k1']) {
    const name = `release/${keyType}`
    const info = await ci.createKey(name, keyType)
    assert.deepEqual([info.name, info.keyType, info.latestVersion, info.minVerifyVersion],
      [name, keyType, 1, 1])
    assert.ok(info.versions[0].createdAt instanceof Date)
    assert.equal(info.rateLimit, null)

    const sig = await ci.sign(name, msg)
    assert.ok(sig instanceof Signature)
    assert.equal(sig.version, 1)
    assert.match(sig.text, /^strongroom:v1:[A-Za-z0-9+/]+=*$/)
    assert.equal(String(sig), sig.text)
    assert.equal(JSON.stringify({ sig }), JSON.stringify({ sig: sig.text }))
    assert.equal(await ci.verify(name, msg, sig), true)
    assert.equal(await ci.verify(name, msg, sig.text), true)
    assert.equal(await ci.verify(name, msg, Signature.parse(sig.text)), true)
    assert.equal(await ci.verify(name, Buffer.from('artifact bytez'), sig), false)
    assert.equal(await ci.verify(name, 'artifact bytes', sig), true) // strings are UTF-8

    const pub = await ci.publicKey(name)
    assert.equal(pub.keyType, keyType)
    assert.equal(pub.version, 1)
    assert.equal(pub.raw.length, keyType === 'ed25519' ? 32 : 65)
    assert.match(pub.spkiPem, /^-----BEGIN PUBLIC KEY-----\n/)
    // Independent checks with node:crypto where it speaks the algorithm.
    if (keyType === 'ed25519') {
      assert.equal(sig.bytes.length, 64)
      assert.ok(crypto.verify(null, msg, pub.spkiPem, sig.bytes))
    } else if (keyType === 'ecdsa_p256') {
      assert.ok(crypto.verify('sha256', msg, crypto.createPublicKey({ key: pub.spkiDer, format: 'der', type: 'spki' }),
        sig.bytes))
    } else {
      assert.equal(sig.bytes.length, 65)
      assert.match(pub.ethAddress, /^0x[0-9a-fA-F]{40}$/)
      assert.equal(await ci.ethAddress(name), pub.ethAddress)
    }
    if (keyType !== 'secp256k1') assert.equal(pub.ethAddress, null)
  }
  await store.close()
})

test('the store\'s own keys work unchecked; a parsed text signature verifies', async () => {
  const { store, keys } = await setup()
  assert.equal(keys.principal, null)
  await keys.createKey('tools/one', 'ed25519')
  const sig = await keys.sign('tools/one', 'hello')
  const parsed = Signature.parse(sig.toString())
  assert.equal(parsed.version, 1)
  assert.deepEqual(parsed.bytes, sig.bytes)
  assert.equal(await keys.verify('tools/one', 'hello', parsed), true)
  assert.equal(util.inspect(parsed), `Signature { ${sig.text} }`)
  assert.throws(() => Signature.parse('strongroom:v0:AAAA'), (e) =>
    e instanceof sr.SigningBadSignatureEncoding && e instanceof sr.SigningError &&
    e.code === 'signing.bad_signature_encoding')
  await assert.rejects(keys.verify('tools/one', 'hello', 'not a signature'), sr.SigningBadSignatureEncoding)
  await assert.rejects(keys.createKey('tools/one', 'ed25519'), (e) =>
    e instanceof sr.SigningKeyExists && e.key === 'tools/one')
  await assert.rejects(keys.sign('tools/missing', 'x'), (e) => e instanceof sr.SigningUnknownKey)
  await assert.rejects(keys.createKey('tools/two', 'rsa'), sr.InvalidArgument)
  await store.close()
  await assert.rejects(keys.sign('tools/one', 'x'), sr.Closed)
})

test('policy denial rejects with PolicyDenied, and the audit log never holds the message', async () => {
  const { store, audit, keys, ci } = await setup()
  await ci.createKey('release/app', 'ed25519')
  const auditor = store.asPrincipal('auditor', [Policy.fromToml(READ_ONLY)], audit).signing(keys)
  await assert.rejects(auditor.sign('release/app', 'secret build manifest'), (e) =>
    e instanceof sr.PolicyDenied && e.capability === 'sign' && e.path === 'release/app' &&
    e.principal === 'auditor')
  await assert.rejects(ci.createKey('other/key', 'ed25519'), (e) =>
    e instanceof sr.PolicyDenied && e.capability === 'create')
  // Reading and verifying are allowed with `read`.
  const sig = await ci.sign('release/app', 'secret build manifest')
  assert.equal(await auditor.verify('release/app', 'secret build manifest', sig), true)
  const lines = audit.memoryLines().join('\n')
  assert.ok(lines.includes('message_hmac'))
  assert.ok(!lines.includes('secret build manifest'))
  // The store's own secrets object has no principal.
  assert.throws(() => store.secrets().signing(keys), sr.InvalidArgument)
  assert.throws(() => store.secrets().signing({}), TypeError)
  const other = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  assert.throws(() => store.asPrincipal('ci', [Policy.fromToml(POLICY)], audit).signing(other.signingKeys()),
    sr.InvalidArgument)
  await other.close()
  await store.close()
})

test('rotation: old signatures verify until the minimum verify version is raised', async () => {
  const { store, ci } = await setup()
  const name = 'release/rotating'
  await ci.createKey(name, 'ecdsa_p256')
  const old = await ci.sign(name, 'm')
  const info = await ci.rotateKey(name)
  assert.equal(info.latestVersion, 2)
  assert.equal(info.versions.length, 2)
  const fresh = await ci.sign(name, 'm')
  assert.equal(fresh.version, 2)
  assert.equal(await ci.verify(name, 'm', old), true)
  assert.equal((await ci.publicKey(name, { version: 1 })).version, 1)

  const raised = await ci.setMinVerifyVersion(name, 2)
  assert.equal(raised.minVerifyVersion, 2)
  await assert.rejects(ci.verify(name, 'm', old), (e) =>
    e instanceof sr.SigningVersionRetired && e instanceof sr.SigningError &&
    e.code === 'signing.version_retired' && e.key === name && e.version === 1 && e.min_verify_version === 2)
  assert.equal(await ci.verify(name, 'm', fresh), true)
  await assert.rejects(ci.setMinVerifyVersion(name, 1), sr.SigningInvalidMinVerifyVersion)
  await store.close()
})

test('rate limits: set, enforced with a typed error, removed', async () => {
  const { store, ci } = await setup()
  const name = 'release/limited'
  const info = await ci.createKey(name, 'ed25519', { rateLimit: { perSecond: 1, burst: 2 } })
  assert.deepEqual(info.rateLimit, { perSecond: 1, burst: 2 })
  await ci.sign(name, 'a')
  await ci.sign(name, 'b')
  await assert.rejects(ci.sign(name, 'c'), (e) =>
    e instanceof sr.SigningRateLimited && e.key === name && Number.isInteger(e.retry_after_ms))
  assert.equal((await ci.setRateLimit(name, null)).rateLimit, null)
  await ci.sign(name, 'c')
  await assert.rejects(ci.setRateLimit(name, { perSecond: 0, burst: 1 }), sr.SigningInvalidRateLimit)
  await assert.rejects(ci.setRateLimit(name, { perSecond: 1 }), TypeError)
  await store.close()
})

test('a principal\'s view shares the rate-limit bucket of the SigningKeys it was made from', async () => {
  const { store, keys, ci } = await setup()
  const name = 'release/shared'
  await keys.createKey(name, 'ed25519', { rateLimit: { perSecond: 1, burst: 1 } })
  await keys.sign(name, 'a')
  await assert.rejects(ci.sign(name, 'b'), sr.SigningRateLimited)
  // Another engine of the same store has its own bucket.
  await store.signingKeys().sign(name, 'c')
  await store.close()
})

test('Ethereum: personal-message signatures are 65 bytes with v 27 or 28; EIP-155 v; wrong key type', async () => {
  const { store, ci } = await setup()
  await ci.createKey('release/eth', 'secp256k1')
  const e = await ci.ethSignPersonalMessage('release/eth', 'hello ethereum')
  assert.equal(e.bytes.length, 65)
  assert.ok(e.v === 27 || e.v === 28)
  assert.equal(e.bytes[64], e.v)
  assert.equal(e.recoveryId, e.v - 27)
  assert.deepEqual(e.bytes.subarray(0, 32), e.r)
  assert.deepEqual(e.bytes.subarray(32, 64), e.s)
  assert.equal(e.hex, '0x' + e.bytes.toString('hex'))

  const hash = crypto.randomBytes(32)
  const t = await ci.ethSignTransactionHash('release/eth', hash, 1)
  assert.ok(t.v === 37 || t.v === 38)
  const big = await ci.ethSignTransactionHash('release/eth', hash, 2n ** 60n)
  assert.equal(typeof big.v, 'bigint')
  assert.equal(big.v, 2n ** 61n + 35n + BigInt(big.recoveryId))
  await assert.rejects(ci.ethSignTransactionHash('release/eth', Buffer.alloc(31), 1), sr.InvalidArgument)
  await assert.rejects(ci.ethSignTransactionHash('release/eth', hash, 0), sr.SigningInvalidChainId)

  await ci.createKey('release/ed', 'ed25519')
  await assert.rejects(ci.ethSignPersonalMessage('release/ed', 'x'), (err) =>
    err instanceof sr.SigningWrongKeyType && err.key_type === 'ed25519' && err.needed === 'secp256k1')
  await store.close()
})
