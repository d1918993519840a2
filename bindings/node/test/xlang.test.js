'use strict'
// S2: the cross-language matrix. Writes node.json into the shared xlang
// directory, then opens every value every language wrote there and every
// checked-in fixture (bindings/xlang/*.json).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { openSealed, sealedKeyVersion } = require('strongroom')
const { parseJsonBig, hex } = require('./helpers.js')
const { xlangDir, checkedInDir, writeMatrix } = require('../scripts/xlang.js')

function jsonFiles (dir) {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f))
}

test('S2 matrix: values from every language open here', (t) => {
  writeMatrix(path.join(xlangDir(), 'node.json'))
  const files = [...jsonFiles(xlangDir()), ...jsonFiles(checkedInDir)]
  const writers = new Set()
  let opened = 0
  for (const file of files) {
    const doc = parseJsonBig(fs.readFileSync(file, 'utf8'))
    assert.ok(Array.isArray(doc.values) && doc.values.length > 0, file)
    for (const v of doc.values) {
      const got = openSealed(hex(v.key), v.algorithm, v.path, v.version, hex(v.sealed))
      assert.deepEqual(got.reveal(), hex(v.plaintext), `${file}: ${v.path}`)
      assert.equal(sealedKeyVersion(hex(v.sealed)), v.key_version, file)
      opened++
    }
    writers.add(doc.writer)
  }
  // The checked-in fixtures carry every language: Rust, Python, uniffi and Node.
  for (const w of ['node', 'python', 'rust', 'uniffi']) assert.ok(writers.has(w), `${w} missing: ${[...writers]}`)
  assert.ok(fs.existsSync(path.join(checkedInDir, 'node.json')), 'the checked-in Node fixture exists')
  assert.ok(opened >= 8)
  t.diagnostic(`opened ${opened} values from writers: ${[...writers].sort().join(', ')}`)
})
