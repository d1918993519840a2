'use strict'
// Secrets never print their value; wipe() zeroes the bytes handed out.
const test = require('node:test')
const assert = require('node:assert/strict')
const util = require('node:util')
const crypto = require('node:crypto')
const { Strongroom, Secret, SecretWiped, openSealed, sealWithKey } = require('strongroom')

const CANARY = 'canary-7f3a-do-not-print'

async function openedSecret () {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const ctx = { path: 'prod/x', version: 1 }
  return store.openValue(await store.sealValue(CANARY, ctx), ctx)
}

test('toString, template literals, JSON and inspect print a redaction', async () => {
  const s = await openedSecret()
  assert.ok(s instanceof Secret)
  assert.equal(String(s), '[REDACTED]')
  assert.equal(`${s}`, '[REDACTED]')
  assert.equal(s + '', '[REDACTED]')
  assert.equal(JSON.stringify({ s }), '{"s":"[REDACTED]"}')
  assert.equal(util.inspect(s), 'Secret([REDACTED])')
  assert.equal(util.format('%s %o %O %j', s, s, s, s).includes(CANARY), false)
  assert.equal(util.inspect({ nested: [s] }, { depth: 10, showHidden: true }).includes(CANARY), false)
  assert.equal(Object.keys(s).length, 0)
  assert.equal(s.length, CANARY.length)
  assert.equal(s.reveal().toString(), CANARY)
})

test('console.log of a secret prints no value', async () => {
  const s = await openedSecret()
  const lines = []
  const orig = console.log
  console.log = (...args) => lines.push(util.format(...args))
  try {
    console.log(s)
    console.log('value: %s', s)
    console.log({ password: s })
  } finally {
    console.log = orig
  }
  const out = lines.join('\n')
  assert.ok(!out.includes(CANARY), out)
  assert.match(out, /REDACTED/)
})

test('wipe() zeroes the revealed buffer and later reveals throw', async () => {
  const s = await openedSecret()
  const bytes = s.reveal()
  s.wipe()
  assert.equal(s.wiped, true)
  assert.ok(bytes.every((b) => b === 0), 'the buffer handed out is zeroed')
  assert.throws(() => s.reveal(), SecretWiped)
  assert.equal(util.inspect(s), 'Secret([WIPED])')
})

test('low-level open returns a Secret too; Secrets can be sealed directly', () => {
  const key = crypto.randomBytes(32)
  const sealed = sealWithKey(key, 'aes-256-gcm', 1, 'p', 1, new Secret(CANARY))
  const s = openSealed(key, 'aes-256-gcm', 'p', 1, sealed)
  assert.equal(String(s), '[REDACTED]')
  assert.equal(s.reveal().toString(), CANARY)
  assert.ok(!sealed.toString('latin1').includes(CANARY))
})

test('an empty plaintext is an empty secret', () => {
  const key = crypto.randomBytes(32)
  const s = openSealed(key, 'chacha20-poly1305', 'p', 0,
    sealWithKey(key, 'chacha20-poly1305', 1, 'p', 0, Buffer.alloc(0)))
  assert.equal(s.length, 0)
  s.wipe()
})
