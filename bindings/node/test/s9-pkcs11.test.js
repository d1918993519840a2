'use strict'
// bindings/SCENARIOS.md S9: the root key wrapped by a key in a PKCS#11 token
// (SoftHSM2). The token is made here, in a temporary directory, before the
// first PKCS#11 call of this process (SoftHSM reads SOFTHSM2_CONF once).
// SoftHSM2 itself must be installed: `bash scripts/setup-softhsm.sh`.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const sr = require('strongroom')
const { Strongroom, Storage, Secret } = sr

const MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so'
]
const USER_PIN = '1234-user'
const TOKEN = 'sr-node'

function softhsm () {
  const module = MODULES.find((m) => fs.existsSync(m))
  assert.ok(module, 'SoftHSM2 is not installed: run `bash scripts/setup-softhsm.sh` (installs the softhsm2 package)')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-node-softhsm-'))
  fs.mkdirSync(path.join(dir, 'tokens'))
  const conf = path.join(dir, 'softhsm2.conf')
  fs.writeFileSync(conf, `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\n` +
    'log.level = ERROR\nslots.removable = false\n')
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--so-pin', '87654321',
    '--pin', USER_PIN], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' })
  process.env.SOFTHSM2_CONF = conf
  return { module, dir, conf }
}

const hsm = softhsm()
test.after(() => fs.rmSync(hsm.dir, { recursive: true, force: true }))

const pkcs11 = (pin, keyLabel = 'root-kek') => ({ module: hsm.module, tokenLabel: TOKEN, pin, keyLabel })

test('S9 init with a PKCS#11 protector, seal, unseal with the same config; a wrong PIN stays sealed', async () => {
  const storage = Storage.memory()
  const store = await Strongroom.init(storage, { pkcs11: pkcs11(USER_PIN) })
  await store.putSecret('prod/app/db', 'hunter2')
  store.seal()
  assert.equal(store.isSealed, true)
  await store.unseal({ pkcs11: pkcs11(USER_PIN) })
  assert.equal(store.isSealed, false)
  assert.equal((await store.getSecret('prod/app/db')).value.reveal().toString(), 'hunter2')

  store.seal()
  const e = await store.unseal({ pkcs11: pkcs11('0000-wrong') }).catch((err) => err)
  assert.ok(e instanceof sr.ProtectorError, `got ${e && e.name}: ${e && e.message}`)
  assert.equal(e.legacyCode, 'ERR_STRONGROOM_PROTECTOR')
  assert.equal(e.protector, 'pkcs11')
  assert.equal(e.code, 'protector.wrong_pin')
  assert.match(e.message, /wrong pin/i)
  assert.ok(!e.message.includes('0000-wrong') && !e.message.includes(USER_PIN), 'no PIN in the message')
  assert.equal(store.isSealed, true)
  await assert.rejects(store.getSecret('prod/app/db'), sr.Sealed)

  // A new handle on the same storage: the PIN as a Buffer or a Secret.
  const again = await Strongroom.unseal(storage, { pkcs11: pkcs11(Buffer.from(USER_PIN)) })
  assert.equal((await again.getSecret('prod/app/db')).value.reveal().toString(), 'hunter2')
  const viaSecret = await Strongroom.unseal(storage, { pkcs11: pkcs11(new Secret(USER_PIN)) })
  assert.equal((await viaSecret.getSecret('prod/app/db')).value.reveal().toString(), 'hunter2')
  await assert.rejects(Strongroom.unseal(storage, { pkcs11: pkcs11('0000-wrong') }),
    (err) => err instanceof sr.ProtectorError && err.code === 'protector.wrong_pin')
})

test('S9 a key label already on the token is refused for a new store; another label opens nothing', async () => {
  await Strongroom.init(Storage.memory(), { pkcs11: pkcs11(USER_PIN, 'taken') })
  await assert.rejects(Strongroom.init(Storage.memory(), { pkcs11: pkcs11(USER_PIN, 'taken') }),
    (e) => e instanceof sr.ProtectorError && e.code === 'protector.config' && /already holds key/.test(e.message))
  const storage = Storage.memory()
  await Strongroom.init(storage, { pkcs11: pkcs11(USER_PIN, 'first') })
  await assert.rejects(Strongroom.unseal(storage, { pkcs11: pkcs11(USER_PIN, 'no-such-key') }),
    (e) => e instanceof sr.ProtectorError && e.code === 'protector.key_not_found')
  await assert.rejects(Strongroom.unseal(storage, { pkcs11: { ...pkcs11(USER_PIN), tokenLabel: 'no-such-token' } }),
    (e) => e instanceof sr.ProtectorError && e.code === 'protector.token_not_found')
})

test('S9 a wrong PIN as the first login of a process is a wrong PIN too', () => {
  // In this process the token is already logged in; a fresh process sees
  // the token's own CKR_PIN_INCORRECT.
  const script = `
    const { Strongroom, Storage } = require(${JSON.stringify(path.resolve(__dirname, '..', 'index.js'))})
    Strongroom.init(Storage.memory(), { pkcs11: ${JSON.stringify(pkcs11('0000-wrong', 'fresh'))} })
      .then(() => console.log('opened'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })))`
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: process.env }).toString())
  assert.equal(out.name, 'ProtectorError')
  assert.equal(out.code, 'protector.wrong_pin')
  assert.match(out.message, /wrong pin/i)
})

test('S9 options are checked', async () => {
  await assert.rejects(Strongroom.init(Storage.memory(), { pkcs11: { module: hsm.module } }), TypeError)
  await assert.rejects(Strongroom.init(Storage.memory(), { pkcs11: pkcs11(42) }), TypeError)
  await assert.rejects(Strongroom.init(Storage.memory(), { pkcs11: pkcs11(USER_PIN), keyFile: '/nope' }),
    sr.InvalidArgument)
  await assert.rejects(Strongroom.init(Storage.memory(), { pkcs11: pkcs11(Buffer.from([0xff, 0xfe])) }),
    sr.InvalidArgument)
  await assert.rejects(Strongroom.init(Storage.memory(), { pkcs11: { ...pkcs11(USER_PIN), module: '/nonexistent/lib.so' } }),
    (e) => e instanceof sr.ProtectorError && e.code === 'protector.module_not_found')
})
