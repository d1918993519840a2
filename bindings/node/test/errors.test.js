'use strict'
// The error classes against the core's error table (ERROR_CODES,
// docs/ERRORS.md): every table class exists and extends the table's parent,
// real errors arrive as the table's class with its code and exactly its
// fields, the names agree with the Python binding's (its type stub is
// generated from the same table), and the generated blocks of index.d.ts and
// index.mjs are current (`node scripts/gen-errors.js` regenerates them).
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const sr = require('strongroom')

const ROOT_CLASS = 'StrongroomError'
const repo = path.resolve(__dirname, '..', '..', '..')
const rowOf = (code) => sr.ERROR_CODES.find((r) => r.code === code)
const fieldNames = (row) => row.fields.map(([name]) => name)
const rowsByClass = () => {
  const out = new Map()
  for (const r of sr.ERROR_CODES) out.set(r.class, [...(out.get(r.class) ?? []), r])
  return out
}

test('the table is exported whole and matches docs/ERRORS.md', () => {
  const rows = sr.ERROR_CODES
  assert.ok(Array.isArray(rows) && rows.length > 50)
  assert.ok(Object.isFrozen(rows))
  assert.equal(new Set(rows.map((r) => r.code)).size, rows.length)
  const docs = fs.readFileSync(path.join(repo, 'docs', 'ERRORS.md'), 'utf8')
  for (const r of rows) {
    assert.deepEqual(Object.keys(r).sort(), ['class', 'code', 'fields', 'kind', 'meaning', 'parent'])
    assert.ok(docs.includes(`\`${r.code}\``), `${r.code} is not in docs/ERRORS.md`)
    for (const [name] of r.fields) {
      assert.ok(!['name', 'message', 'code', 'stack', 'cause', 'legacyCode'].includes(name), name)
    }
  }
})

test('every table class exists, named so, and extends its parent', () => {
  for (const r of sr.ERROR_CODES) {
    const cls = sr[r.class]
    assert.equal(typeof cls, 'function', r.class)
    assert.equal(cls.name, r.class)
    assert.equal(Object.getPrototypeOf(cls), sr[r.parent], `${r.class} extends ${r.parent}`)
    if (r.parent !== ROOT_CLASS) assert.equal(Object.getPrototypeOf(sr[r.parent]), sr.StrongroomError)
    const e = new cls('m')
    assert.ok(e instanceof sr.StrongroomError && e instanceof Error)
    assert.equal(e.name, r.class)
    assert.equal(e.message, 'm')
  }
  for (const [cls, rows] of rowsByClass()) {
    // A class with one code has it on the class; several: `code` tells them apart.
    assert.equal(sr[cls].code, rows.length === 1 ? rows[0].code : undefined, cls)
  }
  // Every exported error class is the table's, the binding's own or an alias.
  const classes = Object.entries(sr).filter(([, v]) => typeof v === 'function' &&
    (v === sr.StrongroomError || v.prototype instanceof sr.StrongroomError)).map(([k]) => k)
  assert.deepEqual(classes.sort(), [...sr.ERROR_CLASSES].sort())
  const table = new Set([ROOT_CLASS, ...sr.ERROR_CODES.flatMap((r) => [r.class, r.parent])])
  const own = ['Closed', 'SecretWiped']
  for (const name of sr.ERROR_CLASSES) {
    if (table.has(name) || own.includes(name)) assert.equal(sr[name].name, name)
    else assert.ok(table.has(sr[name].name), `${name} is an alias of a table class`)
  }
})

test('old class names are aliases of the table classes', () => {
  const renamed = {
    RandomFailure: 'RandomFailed',
    CasConflict: 'SecretCasMismatch',
    NotFound: 'SecretNotFound',
    VersionDeleted: 'SecretVersionDeleted',
    VersionDestroyed: 'SecretVersionDestroyed',
    VersionPruned: 'SecretVersionPruned',
    PolicyParseError: 'PolicyParse',
    SecretStoreError: 'SecretError'
  }
  for (const [old, now] of Object.entries(renamed)) assert.equal(sr[old], sr[now], `${old} -> ${now}`)
})

test('class, parent and field names equal the Python binding\'s (its stub, from the same table)', () => {
  const stub = fs.readFileSync(path.join(repo, 'bindings', 'python', 'python', 'strongroom', '__init__.pyi'), 'utf8')
  const block = stub.slice(stub.indexOf('# BEGIN error classes'), stub.indexOf('# END error classes'))
  assert.ok(block.length > 100, 'the Python stub has its generated error block')
  const py = new Map()
  let current = null
  for (const line of block.split('\n')) {
    let m = /^class (\w+)\((\w+)\):/.exec(line)
    if (m) { current = { parent: m[2], fields: [] }; py.set(m[1], current); continue }
    m = /^ {4}(\w+): /.exec(line)
    if (m && current) current.fields.push(m[1])
  }
  for (const [cls, rows] of rowsByClass()) {
    const p = py.get(cls)
    assert.ok(p, `${cls} is a Python class`)
    assert.equal(p.parent, rows[0].parent, cls)
    const union = [...new Set(rows.flatMap(fieldNames))]
    assert.deepEqual([...p.fields].sort(), union.sort(), `${cls} fields`)
  }
  // And the Python aliases exist here too, naming the same classes.
  const src = fs.readFileSync(path.join(repo, 'bindings', 'python', 'src', 'errors.rs'), 'utf8')
  const aliases = [...src.matchAll(/\("(\w+)", "(\w+)"\)/g)]
  assert.ok(aliases.length >= 5)
  for (const [, old, now] of aliases) assert.equal(sr[old], sr[now], `${old} -> ${now}`)
})

// Asserts an error from the core: the table's class, code and exactly the
// code's fields (in the table's order), typed as the table says.
function assertTableError (e, code) {
  const row = rowOf(code)
  assert.ok(row, code)
  assert.ok(e instanceof sr[row.class], `${e && e.name} is ${row.class}`)
  assert.equal(e.constructor, sr[row.class])
  assert.equal(e.name, row.class)
  assert.equal(e.code, code)
  assert.deepEqual(Object.keys(e), fieldNames(row), `${code} fields`)
  for (const [name, ty] of row.fields) {
    const v = e[name]
    const ok = {
      string: typeof v === 'string',
      'string?': v === null || typeof v === 'string',
      u64: Number.isInteger(v),
      'u64?': v === null || Number.isInteger(v),
      timestamp: Number.isInteger(v),
      'list<string>': Array.isArray(v),
      'list<bool>': Array.isArray(v)
    }[ty]
    assert.ok(ok, `${code}.${name}: ${ty}, got ${typeof v}`)
  }
  assert.ok(!e.message.includes('\u0001'), 'no wire marker leaks into messages')
  return e
}

test('real errors carry the table\'s class, code and fields', async () => {
  const T0 = Date.UTC(2026, 0, 1)
  const store = await sr.Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const other = await sr.Strongroom.open(':memory:', { key: crypto.randomBytes(32) })

  // Wrong key.
  const sealed = await store.sealValue('top secret value', { path: 'a', version: 1 })
  const d = assertTableError(await other.openValue(sealed, { path: 'a', version: 1 }).catch((x) => x),
    'decryption_failed')
  assert.ok(d instanceof sr.DecryptionFailed)
  assert.equal(d.message, 'decryption failed')
  assert.equal(d.legacyCode, 'ERR_STRONGROOM_DECRYPTION_FAILED')
  assert.match(d.stack, /DecryptionFailed: decryption failed/)
  const printed = require('node:util').inspect(d) + JSON.stringify(d)
  assert.ok(!printed.includes('top secret'))

  const relabelled = Buffer.from(sealed)
  relabelled.writeUInt32BE(3, 4)
  const u = assertTableError(await store.openValue(relabelled, { path: 'a', version: 1 }).catch((x) => x),
    'unknown_key_version')
  assert.deepEqual([u.version, u.latest], [3, 1])

  // Missing secret, CAS mismatch, deleted version, invalid path.
  const p = 'prod/app/db'
  const nf = assertTableError(await store.getSecret('prod/app/missing').catch((x) => x), 'secret.not_found')
  assert.deepEqual([nf.path, nf.version], ['prod/app/missing', null])
  assert.ok(nf instanceof sr.SecretError && nf instanceof sr.NotFound)
  await store.putSecret(p, 'v1', { cas: 0 })
  await store.putSecret(p, 'v2', { cas: 1 })
  const cas = assertTableError(await store.putSecret(p, 'x', { cas: 1 }).catch((x) => x), 'secret.cas_mismatch')
  assert.deepEqual([cas.path, cas.expected, cas.current], [p, 1, 2])
  assert.ok(cas instanceof sr.CasConflict)
  assert.equal(cas.legacyCode, 'ERR_STRONGROOM_CAS_CONFLICT')
  await store.deleteSecret(p, [1])
  const del = assertTableError(await store.getSecret(p, { version: 1 }).catch((x) => x), 'secret.version_deleted')
  assert.deepEqual([del.path, del.version], [p, 1])
  assert.ok(Math.abs(del.deleted_at - Date.now()) < 60_000)
  const ip = assertTableError(await store.getSecret('Prod/app').catch((x) => x), 'path.upper_case')
  assert.ok(ip instanceof sr.InvalidPath)
  assert.equal(ip.path, 'Prod/app')
  assert.equal(ip.legacyCode, 'ERR_STRONGROOM_INVALID_PATH')

  // Lease not found, expired.
  const clock = sr.Clock.manual(T0)
  const leases = store.leaseManager(clock)
  const l = await leases.issue('prod/app/db', { ttlMs: 60_000, maxTtlMs: 600_000 })
  clock.advance(120_000)
  const ex = assertTableError(await leases.renew(l.id, 60_000).catch((x) => x), 'lease.expired')
  assert.deepEqual([ex.id, ex.expired_at], [l.id, T0 + 60_000])
  assert.ok(ex instanceof sr.LeaseError)
  await leases.runDue()
  const ln = assertTableError(await leases.lookup(l.id).catch((x) => x), 'lease.not_found')
  assert.equal(ln.id, l.id)
  await store.close()
  await other.close()
})

test('synchronous low-level calls throw table errors too', () => {
  let e
  try { sr.openSealed(Buffer.alloc(32), 'aes-256-gcm', 'p', 1, Buffer.alloc(10)) } catch (x) { e = x }
  assertTableError(e, 'malformed_sealed_value')
  assert.throws(() => sr.sealedKeyVersion(Buffer.from('nope')), sr.MalformedSealedValue)
})

test('the binding\'s own errors: Closed and SecretWiped', async () => {
  assert.equal(sr.Closed.code, 'closed')
  assert.equal(sr.SecretWiped.code, 'secret_wiped')
  assert.ok(!sr.ERROR_CODES.some((r) => r.class === 'Closed' || r.class === 'SecretWiped'))
  const store = await sr.Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  await store.close()
  const c = await store.sealValue('x', { path: 'a', version: 1 }).catch((x) => x)
  assert.ok(c instanceof sr.Closed && c instanceof sr.StrongroomError)
  assert.equal(c.code, 'closed')
  assert.equal(c.legacyCode, 'ERR_STRONGROOM_CLOSED')
  assert.deepEqual(Object.keys(c), [])
  const s = new sr.Secret(Buffer.from('x'))
  s.wipe()
  assert.throws(() => s.reveal(), (e) => e instanceof sr.SecretWiped && e.code === 'secret_wiped' &&
    e.legacyCode === 'ERR_STRONGROOM_SECRET_WIPED')
})

test('non-Strongroom errors pass through unchanged', async () => {
  const store = await sr.Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  await assert.rejects(store.openValue('not a buffer', { path: 'a', version: 1 }), TypeError)
})

test('the generated error blocks of index.d.ts and index.mjs are current', () => {
  execFileSync(process.execPath, [path.join(__dirname, '..', 'scripts', 'gen-errors.js'), '--check'],
    { stdio: 'pipe' })
})
