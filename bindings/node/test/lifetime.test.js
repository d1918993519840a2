'use strict'
// Lifetimes: close() and Symbol.asyncDispose on stores and storages, and a
// process that exits without closing exits cleanly. Push-style lease
// events: a listener (EventEmitter) or events() gets expiry revocations
// done by the background scheduler under a manual clock, and revocations.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, execFileSync } = require('node:child_process')
const sr = require('strongroom')
const { Strongroom, Storage, Clock, Closed } = sr

const T0 = Date.UTC(2026, 0, 1)
const key = () => crypto.randomBytes(32)

function tmpdir (t) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'strongroom-node-life-'))
  t.after(() => fs.rmSync(d, { recursive: true, force: true }))
  return d
}

/** The next lease event matching `pred`; fails after `ms` (a ref'd timer keeps the loop alive meanwhile). */
function nextEvent (leases, pred, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { leases.off('event', listener); reject(new Error('no such lease event')) }, ms)
    function listener (e) {
      if (!pred(e)) return
      clearTimeout(timer)
      leases.off('event', listener)
      resolve(e)
    }
    leases.on('event', listener)
  })
}

/** The files under `prefix` this process holds open (Linux: /proc/self/fd). */
function openFiles (prefix) {
  const out = []
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith(prefix)) out.push(target)
    } catch {}
  }
  return out
}

/**
 * Waits (up to 5 s) until this process holds no file of the database open.
 * The core's SqliteStore.close() aborts the change watcher's task without
 * waiting for it, so the watcher's read connection can close a moment
 * after close() resolved.
 */
async function released (db) {
  if (!fs.existsSync('/proc/self/fd')) return
  const until = Date.now() + 5000
  while (openFiles(db).length > 0) {
    if (Date.now() > until) assert.fail(`still open 5 s after close(): ${openFiles(db).join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const isClosed = (e) => e instanceof Closed && e instanceof sr.StrongroomError && e.code === 'closed' && e.legacyCode === 'ERR_STRONGROOM_CLOSED'

test('Symbol.asyncDispose exists on this Node and both classes implement it', () => {
  assert.equal(typeof Symbol.asyncDispose, 'symbol')
  assert.equal(typeof Strongroom.prototype[Symbol.asyncDispose], 'function')
  assert.equal(typeof Storage.prototype[Symbol.asyncDispose], 'function')
  assert.equal(Closed.code, 'closed')
})

test('close() is idempotent; afterwards every call rejects (or throws) Closed', async () => {
  const store = await Strongroom.open(':memory:', { key: key() })
  const sealed = await store.sealValue('x', { path: 'a/b', version: 1 })
  await store.putSecret('app/db', 'pw')
  const secrets = store.secrets()
  const leases = store.leaseManager(Clock.manual(T0))
  const lease = await leases.issue('app/l', { ttlMs: 1000 })
  assert.equal(store.isClosed, false)

  const first = store.close()
  assert.equal(store.close(), first, 'the same promise')
  await first
  await store.close()
  assert.equal(store.isClosed, true)

  await assert.rejects(store.sealValue('x', { path: 'a/b', version: 1 }), isClosed)
  await assert.rejects(store.openValue(sealed, { path: 'a/b', version: 1 }), isClosed)
  await assert.rejects(store.putSealed('s/k', 'x', { path: 'a/b', version: 1 }), isClosed)
  await assert.rejects(store.getSealed('s/k', { path: 'a/b', version: 1 }), isClosed)
  await assert.rejects(store.rotate(), isClosed)
  await assert.rejects(store.reload(), isClosed)
  await assert.rejects(store.unseal({ key: key() }), isClosed)
  await assert.rejects(store.getSecret('app/db'), isClosed)
  await assert.rejects(secrets.get('app/db'), isClosed)
  await assert.rejects(store.openAuditLog({ memory: true }), isClosed)
  await assert.rejects(store.apiKeyRotation('svc/k', { chars: 32 }), isClosed)
  assert.throws(() => store.keys(), isClosed)
  assert.throws(() => store.seal(), isClosed)
  assert.throws(() => store.isSealed, isClosed)
  assert.throws(() => store.leaseManager(), isClosed)
  await assert.rejects(leases.lookup(lease.id), isClosed)
  await assert.rejects(leases.issue('app/m', { ttlMs: 1000 }), isClosed)
  await assert.rejects(leases.runDue(), isClosed)
  assert.throws(() => leases.start(), isClosed)
  assert.match(require('node:util').inspect(store), /closed: true/)
})

test('close() on a store opened from a path releases the SQLite file; a given Storage stays open', async (t) => {
  const dir = tmpdir(t)
  const db = path.join(dir, 'a.db')
  const k = key()
  const store = await Strongroom.open(db, { key: k })
  await store.putSecret('app/db', 'pw')
  const leases = store.leaseManager()
  leases.start()
  assert.equal(leases.isRunning, true)
  assert.ok(openFiles(db).length > 0 || !fs.existsSync('/proc/self/fd'))
  await store[Symbol.asyncDispose]()
  assert.equal(leases.isRunning, false, 'close() stopped the scheduler')
  // Every connection, the writer's included, is closed.
  await released(db)

  // A Storage handed to open() is the caller's: the store's close leaves it open.
  const storage = await Storage.open(db)
  const again = await Strongroom.open(storage, { key: k })
  assert.equal((await again.getSecret('app/db')).value.reveal().toString(), 'pw')
  await again.close()
  assert.equal(await storage.isInitialized(), true)
  assert.ok(openFiles(db).length > 0 || !fs.existsSync('/proc/self/fd'))
  await storage[Symbol.asyncDispose]()
  assert.equal(storage.isClosed, true)
  await storage.close()
  await released(db)
  await assert.rejects(storage.isInitialized(), isClosed)
  await assert.rejects(Strongroom.open(storage, { key: k }), isClosed)
})

test('a closed store does not keep the event loop alive', (t) => {
  const dir = tmpdir(t)
  const script = `
    const { Strongroom } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
    ;(async () => {
      const store = await Strongroom.open(${JSON.stringify(path.join(dir, 'c.db'))}, { key: require('crypto').randomBytes(32) })
      const leases = store.leaseManager()
      leases.on('event', () => {})
      leases.start()
      await leases.issue('app/l', { ttlMs: 3600000 })
      await store.close()
      console.log('closed')
    })()`
  const out = execFileSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  assert.equal(out.trim(), 'closed')
})

test('push-style lease events: the scheduler revokes an expired lease under a manual clock, and revocation is an event', async () => {
  const store = await Strongroom.open(':memory:', { key: key() })
  const clock = Clock.manual(T0)
  const leases = store.leaseManager(clock)
  const seen = []
  const all = (e) => seen.push(e)
  leases.on('event', all)
  assert.equal(leases.start(), true)
  assert.equal(leases.start(), false, 'already running')

  const issuedEv = nextEvent(leases, (e) => e.kind === 'issued')
  const l = await leases.issue('app/db', { ttlMs: 60_000 })
  const issued = await issuedEv
  assert.equal(issued.id, l.id)
  assert.equal(issued.path, 'app/db')
  assert.equal(issued.expiresAt.getTime(), T0 + 60_000)

  // Expiry: no runDue() call; the clock moves and the scheduler acts.
  const expired = nextEvent(leases, (e) => e.kind === 'revoked' && e.id === l.id)
  const soon = nextEvent(leases, (e) => e.kind === 'expiring_soon' && e.id === l.id)
  clock.advance(46_000) // past 3/4 of the TTL
  assert.equal((await soon).expiresAt.getTime(), T0 + 60_000)
  clock.advance(15_000)
  const ev = await expired
  assert.equal(ev.path, 'app/db')
  assert.equal(ev.forced, false)
  await assert.rejects(leases.lookup(l.id), sr.LeaseNotFound)

  // Revocation, through a per-kind listener and events().
  const m = await leases.issue('app/mq', { ttlMs: 3_600_000 })
  const byKind = new Promise((resolve) => leases.once('revoked', resolve))
  const ac = new AbortController()
  const iterated = (async () => {
    for await (const e of leases.events({ signal: ac.signal })) {
      if (e.kind === 'revoked') return e
    }
  })()
  const guard = setTimeout(() => ac.abort(), 10_000)
  await leases.revoke(m.id)
  assert.equal((await byKind).id, m.id)
  assert.equal((await iterated).id, m.id)
  clearTimeout(guard)

  // The pushed events are the polled ones.
  assert.deepEqual(leases.takeEvents().map((e) => e.kind), seen.map((e) => e.kind))
  leases.off('event', all)
  assert.equal(await leases.stop(), true)
  assert.equal(leases.isRunning, false)
  assert.equal(await leases.stop(), false)
  await store.close()
})

test('a JavaScript revoker failing pushes no revoked event until the retry succeeds', async () => {
  const store = await Strongroom.open(':memory:', { key: key() })
  const clock = Clock.manual(T0)
  const leases = store.leaseManager(clock)
  let fail = true
  leases.registerEngine('db', async () => { if (fail) throw new Error('db down') })
  const kinds = []
  leases.on('event', (e) => kinds.push(e.kind))
  leases.start()
  const l = await leases.issue('app/db', { engine: 'db', ttlMs: 1000 })
  clock.advance(1001)
  // The scheduler tries, fails and defers; no revoked event yet.
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.ok(!kinds.includes('revoked'))
  fail = false
  const revoked = nextEvent(leases, (e) => e.kind === 'revoked' && e.id === l.id)
  clock.advance(600_000) // past any retry backoff
  assert.equal((await revoked).id, l.id)
  await store.close()
})

test('processes that exit without close() exit cleanly', { timeout: 600_000 }, async (t) => {
  const count = Number(process.env.STRONGROOM_EXIT_CHILDREN ?? 50)
  const parallel = Math.max(1, Number(process.env.STRONGROOM_EXIT_PARALLEL ?? 4))
  const child = path.join(__dirname, 'fixtures', 'exit-child.js')
  const modes = ['end', 'exit', 'events']
  const failures = []
  let next = 0
  async function worker () {
    while (next < count) {
      const i = next++
      const dir = tmpdir(t)
      const mode = modes[i % modes.length]
      const r = await new Promise((resolve) => {
        const p = spawn(process.execPath, [child, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'] })
        let out = ''
        p.stdout.on('data', (d) => { out += d })
        p.stderr.on('data', (d) => { out += d })
        const timer = setTimeout(() => p.kill('SIGKILL'), 60_000)
        p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out }) })
      })
      if (r.code !== 0 || r.signal || r.out !== '') failures.push({ i, mode, ...r })
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  assert.deepEqual(failures, [], `${failures.length} of ${count} children did not exit cleanly`)
})
