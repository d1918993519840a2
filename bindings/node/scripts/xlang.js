'use strict'
// Cross-language matrix values (bindings/SCENARIOS.md, S2): one value per
// algorithm, sealed by this binding with a fresh key and nonce.
//
//   node scripts/xlang.js [OUT.json]   writes them (default: the xlang dir)

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { sealWithKey } = require('../index.js')

const repo = path.resolve(__dirname, '..', '..', '..')

/** Where every language's test run drops its matrix file. */
function xlangDir () {
  if (process.env.STRONGROOM_XLANG_DIR) return process.env.STRONGROOM_XLANG_DIR
  const target = process.env.CARGO_TARGET_DIR || path.join(repo, 'target')
  return path.join(target, 'strongroom-xlang')
}

/** Checked-in fixtures, one per language. */
const checkedInDir = path.join(repo, 'bindings', 'xlang')

function matrixValues (writer) {
  const values = []
  for (const [algorithm, keyVersion] of [['aes-256-gcm', 3], ['chacha20-poly1305', 4]]) {
    const key = crypto.randomBytes(32)
    const plaintext = Buffer.from(`sealed by ${writer} with ${algorithm}`)
    const p = `xlang/${writer}/${algorithm}`
    const version = 7
    const sealed = sealWithKey(key, algorithm, keyVersion, p, version, plaintext)
    values.push({
      algorithm,
      key: key.toString('hex'),
      key_version: keyVersion,
      path: p,
      version,
      plaintext: plaintext.toString('hex'),
      sealed: sealed.toString('hex')
    })
  }
  return { writer, values }
}

function writeMatrix (file) {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(matrixValues('node'), null, 2) + '\n')
  return file
}

module.exports = { xlangDir, checkedInDir, matrixValues, writeMatrix }

if (require.main === module) {
  console.log(writeMatrix(process.argv[2] || path.join(xlangDir(), 'node.json')))
}
