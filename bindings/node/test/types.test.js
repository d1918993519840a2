'use strict'
// index.d.ts matches the API: every declared export exists at run time, and
// a usage file type-checks against it under --strict.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const sr = require('strongroom')

const root = path.resolve(__dirname, '..')

test('every export declared in index.d.ts exists, and every export is declared', () => {
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const declared = new Set([...dts.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map((m) => m[1]))
  assert.ok(declared.size > 20)
  for (const name of declared) {
    assert.ok(['function', 'object'].includes(typeof sr[name]) && sr[name] !== null, `${name} declared but missing`)
  }
  for (const name of Object.keys(sr)) assert.ok(declared.has(name), `${name} exported but not declared`)
})

test('a usage file type-checks against index.d.ts (tsc --strict)', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  assert.ok(fs.existsSync(tsc), 'typescript is a devDependency: run npm install')
  execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'node16',
    '--moduleResolution', 'node16', '--types', 'node', '--skipLibCheck', path.join(root, 'test', 'types-usage.ts')],
  { cwd: root, stdio: 'pipe' })
})
