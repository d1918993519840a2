'use strict'
// Writes the generated error blocks of index.d.ts (the class declarations)
// and index.mjs (the named exports) from the core's error table, as the
// built addon exports it. `node scripts/gen-errors.js` rewrites them;
// `--check` exits 1 when they are stale (test/errors.test.js runs it).
const fs = require('node:fs')
const path = require('node:path')
const sr = require('..')

const root = path.resolve(__dirname, '..')
const BEGIN = '// BEGIN GENERATED ERRORS (node scripts/gen-errors.js; from ERROR_CODES)'
const END = '// END GENERATED ERRORS'

const TS_TYPES = {
  string: 'string',
  'string?': 'string | null',
  u64: 'number',
  'u64?': 'number | null',
  timestamp: 'number',
  'list<string>': 'string[]',
  'list<bool>': 'boolean[]'
}

function dtsBlock () {
  const out = []
  const table = sr.ERROR_CODES
  for (const name of sr.ERROR_CLASSES) {
    if (name === 'StrongroomError') continue
    const cls = sr[name]
    if (cls.name !== name) {
      out.push(`/** Old name of ${cls.name}. */`)
      out.push(`export declare const ${name}: typeof ${cls.name}`)
      out.push(`export type ${name} = ${cls.name}`)
      continue
    }
    const parent = Object.getPrototypeOf(cls).name
    const rows = table.filter((r) => r.class === name)
    if (rows.length === 0 && cls.code) {
      const what = name === 'Closed' ? 'a call on a store, storage or lease manager after close()'
        : 'reveal() on a wiped Secret'
      out.push(`/** The binding's own (code "${cls.code}"): ${what}. */`)
    } else if (rows.length === 0) {
      out.push(`/** The ${name} family. */`)
    } else if (rows.length === 1) {
      out.push(`/** Code "${rows[0].code}": ${rows[0].meaning}. */`)
    } else {
      out.push('/**')
      out.push(' * One class for several codes; `code` tells them apart:')
      for (const r of rows) out.push(` * - "${r.code}": ${r.meaning}`)
      out.push(' */')
    }
    // Fields of every row are required; fields of some rows optional.
    const fields = []
    for (const r of rows) {
      for (const [f, ty] of r.fields) {
        if (!fields.some((x) => x[0] === f)) fields.push([f, ty])
      }
    }
    if (fields.length === 0) {
      out.push(`export declare class ${name} extends ${parent} {}`)
      continue
    }
    out.push(`export declare class ${name} extends ${parent} {`)
    for (const [f, ty] of fields) {
      const all = rows.every((r) => r.fields.some((x) => x[0] === f))
      out.push(`  readonly ${f}${all ? '' : '?'}: ${TS_TYPES[ty]}`)
    }
    out.push('}')
  }
  return out.join('\n')
}

function mjsBlock () {
  return sr.ERROR_CLASSES.map((n) => `  ${n},`).join('\n')
}

function replaceBlock (text, block, file) {
  const a = text.indexOf(BEGIN)
  const b = text.indexOf(END)
  if (a < 0 || b < a) throw new Error(`${file}: no generated errors block`)
  return text.slice(0, a + BEGIN.length) + '\n' + block + '\n' + text.slice(b)
}

function generate () {
  const files = {}
  for (const [file, block] of [['index.d.ts', dtsBlock()], ['index.mjs', mjsBlock()]]) {
    const p = path.join(root, file)
    const before = fs.readFileSync(p, 'utf8')
    files[p] = { before, after: replaceBlock(before, block, file) }
  }
  return files
}

module.exports = { generate }

if (require.main === module) {
  const check = process.argv.includes('--check')
  let stale = false
  for (const [p, { before, after }] of Object.entries(generate())) {
    if (before === after) continue
    stale = true
    if (check) console.error(`${path.relative(root, p)} is stale: run node scripts/gen-errors.js`)
    else fs.writeFileSync(p, after)
  }
  if (check && stale) process.exit(1)
}
