'use strict'
// The internal CA (strongroom-pki) through the binding: root, role, issue,
// refusal outside the role, revocation onto the CRL, and the leaf's private
// key kept out of printed and serialised forms.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const tls = require('node:tls')
const util = require('node:util')
const sr = require('strongroom')
const { Strongroom, Policy, Pki, IssuedCertificate } = sr

const OPS = `
name = "pki-ops"
[[path]]
pattern = "pki/internal/*"
capabilities = ["sudo", "read", "lease"]
`
const APP = `
name = "app"
[[path]]
pattern = "pki/internal/issue/web"
capabilities = ["lease"]
`

async function setup () {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const audit = await store.openAuditLog({ memory: true })
  const leases = store.leaseManager()
  const pki = store.pki(leases, 'internal')
  const ops = store.asPrincipal('ops', [Policy.fromToml(OPS)], audit)
  const app = store.asPrincipal('app', [Policy.fromToml(APP)], audit)
  return { store, audit, leases, pki, ops, app }
}

test('root, role, issue: the leaf is signed by the root and its key is PKCS#8 DER', async () => {
  const { store, pki, ops, app } = await setup()
  assert.ok(pki instanceof Pki)
  assert.equal(pki.mount, 'internal')
  assert.equal(pki.engine, 'pki-internal')

  const ca = await pki.createRoot(ops, { commonName: 'Internal Root', keyType: 'ecdsa-p256' })
  assert.deepEqual([ca.mount, ca.kind, ca.keyType, ca.commonName], ['internal', 'root', 'ecdsa-p256', 'Internal Root'])
  assert.ok(Buffer.isBuffer(ca.certificate))
  assert.deepEqual(ca.parents, [])
  assert.match(ca.certificatePem, /^-----BEGIN CERTIFICATE-----\n/)
  const root = new crypto.X509Certificate(ca.certificate)
  assert.equal(root.ca, true)
  assert.match(root.subject, /CN=Internal Root/)
  assert.equal(new crypto.X509Certificate(ca.certificatePem).fingerprint256, root.fingerprint256)
  assert.ok(ca.notAfter > ca.notBefore)
  assert.deepEqual((await pki.ca(ops)).certificate, ca.certificate)

  await pki.putRole(ops, 'web', { allowedNames: ['*.svc.example.com'], ttlMs: 3_600_000, maxTtlMs: 86_400_000 })
  const cert = await pki.issue(app, 'web', { dnsNames: ['api.svc.example.com'], keyType: 'ecdsa-p256' })
  assert.ok(cert instanceof IssuedCertificate)
  assert.match(cert.serial, /^[0-9a-f]+$/)
  assert.equal(cert.notAfter - cert.notBefore, 3_600_000)
  const leaf = new crypto.X509Certificate(cert.certificate)
  assert.ok(leaf.verify(root.publicKey))
  assert.ok(leaf.checkHost('api.svc.example.com'))
  assert.equal(leaf.serialNumber.toLowerCase(), cert.serial)
  assert.deepEqual(cert.caChain.map((c) => c.toString('hex')), [ca.certificate.toString('hex')])
  assert.equal(cert.chainPem, cert.certificatePem + ca.certificatePem)

  const key = crypto.createPrivateKey({ key: cert.privateKey, format: 'der', type: 'pkcs8' })
  assert.ok(leaf.checkPrivateKey(key))

  // Ed25519 leaf keys are PKCS#8 v2 (RFC 5958: version 1, the public key
  // appended as [1]), which the OpenSSL 3.0 of Node 20 does not load; check
  // the structure and that the public key is the certificate's.
  const ed = await pki.issue(app, 'web', { dnsNames: ['ed.svc.example.com'], keyType: 'ed25519' })
  assert.equal(ed.keyType, 'ed25519')
  const k = ed.privateKey
  assert.equal(k.length, 83)
  assert.equal(k.subarray(0, 16).toString('hex'), '3051020101300506032b657004220420')
  assert.equal(k.subarray(48, 51).toString('hex'), '812100')
  const spki = new crypto.X509Certificate(ed.certificate).publicKey.export({ format: 'der', type: 'spki' })
  assert.deepEqual(k.subarray(51), spki.subarray(spki.length - 32))
  await store.close()
})

test('the leaf private key is absent from util.inspect, toJSON and the object\'s keys; wipe() zeroes it', async () => {
  const { store, pki, ops, app } = await setup()
  await pki.createRoot(ops, { commonName: 'Root' })
  await pki.putRole(ops, 'web', { allowedNames: ['*.svc.example.com'] })
  const cert = await pki.issue(app, 'web', { dnsNames: ['a.svc.example.com'], keyType: 'ed25519' })
  const keyB64 = cert.privateKey.toString('base64')
  const keyHex = cert.privateKey.toString('hex')
  for (const shown of [util.inspect(cert), util.inspect(cert, { showHidden: true, depth: 5 }),
    JSON.stringify(cert), JSON.stringify(Object.entries(cert))]) {
    assert.ok(!shown.includes(keyB64) && !shown.includes(keyHex), shown)
  }
  assert.ok(util.inspect(cert).includes('[REDACTED]'))
  assert.ok(!Object.keys(cert).includes('privateKey'))
  const held = cert.privateKey
  cert.wipe()
  assert.ok(held.every((b) => b === 0))
  assert.throws(() => cert.privateKey, sr.SecretWiped)
  await store.close()
})

test('a name outside the role is refused; policies are enforced', async () => {
  const { store, pki, ops, app } = await setup()
  await pki.createRoot(ops, { commonName: 'Root' })
  await pki.putRole(ops, 'web', { allowedNames: ['*.svc.example.com'] })
  await assert.rejects(pki.issue(app, 'web', { dnsNames: ['db.example.com'] }), (e) =>
    e instanceof sr.PkiNameNotAllowed && e instanceof sr.PkiError &&
    e instanceof sr.StrongroomError && e.code === 'pki.name_not_allowed' &&
    e.message.includes('db.example.com') &&
    e.role === 'web' && e.requested_name === 'db.example.com')
  await assert.rejects(pki.putRole(app, 'evil', { allowedNames: ['*'] }), (e) =>
    e instanceof sr.PolicyDenied && e.capability === 'sudo')
  await assert.rejects(pki.issue(app, 'other', { dnsNames: ['x.svc.example.com'] }), sr.PolicyDenied)
  await assert.rejects(pki.issue(ops, 'missing', { dnsNames: ['x.svc.example.com'] }), (e) =>
    e instanceof sr.PkiUnknownRole && e.code === 'pki.unknown_role' && e.role === 'missing')
  await assert.rejects(pki.createRoot(ops, { commonName: 'Again' }), (e) =>
    e instanceof sr.PkiCaExists && e.code === 'pki.ca_exists')
  // PKI calls act for a principal.
  await assert.rejects(pki.ca(store.secrets()), sr.InvalidArgument)
  await assert.rejects(pki.ca({}), TypeError)
  assert.throws(() => store.pki({}, 'x'), TypeError)
  // Principals and lease managers of another store are refused.
  const other = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const otherAudit = await other.openAuditLog({ memory: true })
  await assert.rejects(pki.ca(other.asPrincipal('ops', [Policy.fromToml(OPS)], otherAudit)), sr.InvalidArgument)
  assert.throws(() => store.pki(other.leaseManager(), 'x'), sr.InvalidArgument)
  await other.close()
  await store.close()
})

test('revoke: the serial appears in the next CRL\'s DER; so does one revoked through the lease manager', async () => {
  const { store, leases, pki, ops, app } = await setup()
  const ca = await pki.createRoot(ops, { commonName: 'Root', keyType: 'ecdsa-p256' })
  await pki.putRole(ops, 'web', { allowedNames: ['*.svc.example.com'] })
  const keep = await pki.issue(app, 'web', { dnsNames: ['keep.svc.example.com'] })
  const gone = await pki.issue(app, 'web', { dnsNames: ['gone.svc.example.com'] })
  const before = await pki.crl(ops)
  assert.deepEqual(before.serials, [])

  const leaseId = await pki.revoke(ops, gone.serial)
  assert.equal(leaseId, gone.leaseId)
  const crl = await pki.crl(ops)
  assert.deepEqual(crl.serials, [gone.serial])
  assert.ok(crl.number > before.number)
  assert.ok(crl.nextUpdate > crl.thisUpdate)
  // The serial's DER INTEGER (tag 2, length, bytes) is in the CRL, the kept one's is not.
  const integer = (hex) => Buffer.concat([Buffer.from([2, hex.length / 2]), Buffer.from(hex, 'hex')])
  assert.ok(crl.der.includes(integer(gone.serial)))
  assert.ok(!crl.der.includes(integer(keep.serial)))
  assert.match(crl.pem, /^-----BEGIN X509 CRL-----\n/)
  assert.deepEqual(Buffer.from(crl.pem.split('\n').slice(1, -2).join(''), 'base64'), crl.der)
  assert.ok(ca.certificate.length > 0)
  // Revoking the lease through the lease manager puts the serial on the CRL too.
  await leases.revoke(keep.leaseId)
  assert.deepEqual((await pki.crl(ops)).serials.sort(), [gone.serial, keep.serial].sort())
  await assert.rejects(pki.revoke(ops, 'zz'), (e) => e instanceof sr.PkiInvalidRequest &&
    e instanceof sr.PkiError && e.code === 'pki.invalid_request' && typeof e.reason === 'string')
  await store.close()
  await assert.rejects(pki.crl(ops), sr.Closed)
})

test('a P-256 leaf and its root work with node:tls', async () => {
  const { store, pki, ops, app } = await setup()
  const ca = await pki.createRoot(ops, { commonName: 'Root', keyType: 'ecdsa-p256' })
  await pki.putRole(ops, 'web', { allowedNames: ['*.svc.example.com'] })
  const cert = await pki.issue(app, 'web', { dnsNames: ['api.svc.example.com'], keyType: 'ecdsa-p256' })
  const key = crypto.createPrivateKey({ key: cert.privateKey, format: 'der', type: 'pkcs8' })
  // node:tls takes a PEM key; the test converts the DER through a KeyObject.
  const server = tls.createServer({ key: key.export({ format: 'pem', type: 'pkcs8' }), cert: cert.chainPem }, (s) => s.end('hello over tls'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const got = await new Promise((resolve, reject) => {
      const c = tls.connect({
        host: '127.0.0.1', port: server.address().port, ca: ca.certificatePem, servername: 'api.svc.example.com'
      }, () => {
        let data = ''
        c.on('data', (d) => { data += d })
        c.on('end', () => resolve(data))
      })
      c.on('error', reject)
    })
    assert.equal(got, 'hello over tls')
  } finally {
    await new Promise((resolve) => server.close(resolve))
    await store.close()
  }
})
