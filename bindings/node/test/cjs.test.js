'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')

test('require("strongroom") gives the API', () => {
  const sr = require('strongroom')
  for (const name of ['Strongroom', 'Storage', 'Secret', 'sealWithKey', 'openSealed', 'sealedKeyVersion',
    'generateKeyFile', 'StrongroomError', 'DecryptionFailed']) {
    assert.equal(typeof sr[name], 'function', name)
  }
  assert.equal(require('../index.js'), sr)
})

test('the CJS and ESM entries export the same objects', async () => {
  const cjs = require('strongroom')
  const esm = await import('strongroom')
  assert.equal(esm.Strongroom, cjs.Strongroom)
  assert.equal(esm.DecryptionFailed, cjs.DecryptionFailed)
  assert.equal(esm.default, cjs)
  for (const name of Object.keys(cjs)) assert.equal(esm[name], cjs[name], name)
})
