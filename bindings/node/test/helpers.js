'use strict'
const fs = require('node:fs')
const path = require('node:path')

const repo = path.resolve(__dirname, '..', '..', '..')

/** JSON.parse that keeps integers above 2^53 exact (as bigint). */
function parseJsonBig (text) {
  const quoted = text.replace(/("(?:[^"\\]|\\.)*")|(-?\d{16,})(?=\s*[,}\]])/g,
    (m, str, big) => (str !== undefined ? str : `{"$bigint":"${big}"}`))
  return JSON.parse(quoted, (k, v) =>
    v && typeof v === 'object' && typeof v.$bigint === 'string' ? BigInt(v.$bigint) : v)
}

function readVectors (file) {
  return parseJsonBig(fs.readFileSync(file, 'utf8'))
}

const hex = (s) => Buffer.from(s, 'hex')

module.exports = { repo, parseJsonBig, readVectors, hex }
