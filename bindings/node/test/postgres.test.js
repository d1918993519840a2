'use strict'
// PostgreSQL against a private cluster (test/pg-helper.js): a store in
// PostgreSQL, PgRotation with the strongroom/pg pool during rotations
// (alternating and single-user), dynamic credentials, and bad input.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const sr = require('strongroom')
const { createPool } = require('strongroom/pg')
const { Client } = require('pg')
const { Strongroom, Storage, Clock, PgRotation, DynamicPg, CredentialFeed, configurePgCatalog } = sr
const { freshDatabase, gate } = require('./pg-helper.js')

const GRACE = 60_000

async function loginWith (db, username, password) {
  const c = new Client({ host: db.host, port: db.port, database: db.name, user: username, password })
  try {
    await c.connect()
    await c.query('SELECT 1')
    return null
  } catch (e) {
    return e.code
  } finally {
    await c.end().catch(() => {})
  }
}

// Runs `k` loops of queries through `pool` until stop() is called; counts
// queries run and failed (with the first few errors).
function load (pool, k) {
  const stats = { run: 0, failed: 0, errors: [] }
  let stopping = false
  const loops = []
  for (let i = 0; i < k; i++) {
    loops.push((async () => {
      while (!stopping) {
        try {
          await pool.query('SELECT session_user, $1::int AS loop', [i])
          stats.run++
        } catch (e) {
          stats.failed++
          if (stats.errors.length < 5) stats.errors.push(`${e.code}: ${e.message}`)
        }
      }
    })())
  }
  return {
    stats,
    async atLeast (n) {
      const target = stats.run + n
      while (stats.run < target && stats.failed === 0) await new Promise((resolve) => setImmediate(resolve))
    },
    async stop () {
      stopping = true
      await Promise.all(loops)
      return stats
    }
  }
}

test('a store in PostgreSQL: Strongroom.open on a postgres:// URL, close() closes the pool', async () => {
  const db = await freshDatabase('nodestore')
  const key = crypto.randomBytes(32)
  const storage = await Storage.open(db.url)
  assert.equal(storage.backend, 'postgres')
  const store = await Strongroom.init(storage, { key })
  await store.secrets().put('app/db', 'pw-1')
  await store.close()
  await storage.close()
  await assert.rejects(storage.isInitialized(), sr.Closed)

  const alias = await Storage.open(db.url.replace(/^postgres:/, 'postgresql:'))
  assert.equal(alias.backend, 'postgres')
  assert.equal(await alias.isInitialized(), true)
  await alias.close()
  const again = await Strongroom.unseal(db.url, { key })
  assert.equal((await again.secrets().get('app/db')).value.reveal().toString(), 'pw-1')
  await again.close()
  const wrong = new URL(db.url)
  wrong.password = 'hunter2-wrong'
  const e = await Storage.open(wrong.toString()).catch((err) => err)
  assert.ok(e instanceof sr.StorageError, `${e && e.name}`)
  assert.equal(e.code, 'storage.rejected')
  assert.ok(!e.message.includes('hunter2'))
})

test('PgRotation alternating: K query loops through the pool see no failure across rotations; one refresh per refused version', async () => {
  const db = await freshDatabase('nodealt')
  const clock = Clock.manual(Date.now())
  // The store lives on the same server, as a fleet runs it.
  const store = await Strongroom.open(db.url, { key: crypto.randomBytes(32), clock })
  const rotation = await PgRotation.open(store, 'db/app', db.url, 'nodealt_app', { mode: 'alternating', gracePeriodMs: GRACE })
  assert.equal(rotation.name, 'db/app')
  const feed = rotation.credentialFeed()
  assert.ok(feed instanceof CredentialFeed)
  assert.equal(await feed.login(), null, 'nothing rotated yet')
  assert.deepEqual(await rotation.rotateNow(), { promoted: 1, revoked: null })

  const relay = await gate(db.port)
  // maxUses: connections are replaced all the time, so logins happen
  // throughout the rotations.
  const pool = createPool(feed, { host: '127.0.0.1', port: relay.port, database: db.name, max: 4, maxUses: 3 })
  const K = 8
  const ROUNDS = 4
  const run = load(pool, K)
  await run.atLeast(20)
  const refused = []
  for (let round = 0; round < ROUNDS; round++) {
    // Logins taken now wait in the relay while the rotation revokes the
    // password they carry (a slow network): the server refuses them.
    relay.hold()
    while (relay.held === 0 && run.stats.failed === 0) await new Promise((resolve) => setImmediate(resolve))
    const before = (await rotation.status()).current
    await rotation.rotateNow()
    clock.advance(GRACE + 1)
    assert.equal(await rotation.revokeDue(), true)
    refused.push(before)
    relay.release()
    await run.atLeast(30)
  }
  const stats = await run.stop()
  assert.equal(stats.failed, 0, stats.errors.join('; '))
  assert.ok(stats.run >= 20 + ROUNDS * 30)
  const status = await rotation.status()
  assert.equal(status.current, ROUNDS + 1)
  assert.deepEqual(await rotation.resume(), { promoted: null, revoked: null })
  assert.ok(feed.refreshes >= 1, 'held logins were refused and refreshed')
  assert.ok(feed.refreshes <= ROUNDS, `${feed.refreshes} refreshes for ${ROUNDS} refused versions`)
  console.log(`# pool alternating: ${K} loops, ${stats.run} queries, ${stats.failed} failed, ${feed.refreshes} refreshes, ${ROUNDS} rotations`)

  // The revoked password is refused; the current one logs in.
  const staged = await rotation.staged()
  assert.equal(staged.previous, null)
  assert.equal(await loginWith(db, staged.current.identity, staged.current.secret.reveal().toString()), null)
  await pool.end()
  await relay.close()
  await rotation.close()
  await store.close()
})

test('PgRotation single-user: logins refused after a rotation move the pool to the new password', async () => {
  const db = await freshDatabase('nodesingle')
  const admin = new Client({ connectionString: db.url })
  await admin.connect()
  await admin.query('CREATE ROLE nodesingle_app LOGIN')
  await admin.end()
  const clock = Clock.manual(Date.now())
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32), clock })
  const rotation = await PgRotation.open(store, 'db/single', db.url, 'nodesingle_app', { mode: 'single', gracePeriodMs: 0 })
  await rotation.rotateNow()
  const feed = rotation.credentialFeed()
  const first = await feed.login()
  assert.equal(first.username, 'nodesingle_app')
  const firstPassword = first.password.reveal().toString()

  const relay = await gate(db.port)
  // user and password in the config are ignored: the feed's are used.
  const pool = createPool(feed, { host: '127.0.0.1', port: relay.port, database: db.name, max: 6, user: 'nobody', password: 'x' })
  assert.equal((await pool.query('SELECT session_user AS u')).rows[0].u, 'nodesingle_app')
  // Six connections take the first password, wait in the relay while the
  // rotation replaces it, and are refused.
  relay.hold()
  const K = 6
  const clients = []
  for (let i = 0; i < K; i++) clients.push(pool.connect())
  while (relay.held < K - 1) await new Promise((resolve) => setImmediate(resolve))
  await rotation.rotateNow()
  assert.equal(await loginWith(db, 'nodesingle_app', firstPassword), '28P01')
  relay.release()
  const connected = await Promise.all(clients)
  for (const c of connected) {
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1)
    c.release()
  }
  assert.equal(feed.refreshes, 1, 'one refresh for all the refused connections')
  const stats = { run: 0 }
  for (let i = 0; i < 20; i++) {
    await pool.query('SELECT 1')
    stats.run++
  }
  console.log(`# pool single-user: ${K} connections refused once, ${feed.refreshes} refresh, ${stats.run} queries after`)
  // Other errors reach the caller unchanged.
  await assert.rejects(pool.query('SELECT * FROM no_such_table'), (e) => e.code === '42P01')
  // With maxLoginRetries 0 a refused login reaches the caller.
  const strict = createPool(feed, { host: '127.0.0.1', port: relay.port, database: db.name, maxLoginRetries: 0 })
  relay.hold()
  const pending = strict.query('SELECT 1')
  while (relay.held < 1) await new Promise((resolve) => setImmediate(resolve))
  await rotation.rotateNow()
  relay.release()
  await assert.rejects(pending, (e) => e.code === '28P01')
  assert.equal((await strict.query('SELECT 1 AS one')).rows[0].one, 1)
  await strict.end()
  await pool.end()
  await relay.close()
  await rotation.close()
  await store.close()
})

test('the feed by hand: afterError after 28P01 retries with the current login; other errors are not its business', async () => {
  const db = await freshDatabase('nodefeed')
  const clock = Clock.manual(Date.now())
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32), clock })
  const rotation = await PgRotation.open(store, 'db/feed', db.url, 'nodefeed_app', { gracePeriodMs: GRACE })
  await rotation.rotateNow()
  const feed = rotation.credentialFeed()
  const first = await feed.login()
  await rotation.rotateNow()
  clock.advance(GRACE + 1)
  await rotation.revokeDue()
  assert.equal(await loginWith(db, first.username, first.password.reveal().toString()), '28P01')
  const answers = await Promise.all(Array.from({ length: 8 }, () => feed.afterError(first.version, '28P01', 'password authentication failed')))
  for (const a of answers) {
    assert.equal(a.action, 'retry')
    assert.ok(a.login.version > first.version)
    assert.equal(await loginWith(db, a.login.username, a.login.password.reveal().toString()), null)
  }
  assert.equal(feed.refreshes, 1)
  assert.deepEqual(await feed.afterError(first.version, '42P01', 'relation does not exist'), { action: 'not_a_credential_error', login: null })
  // Every stored version refused: nothing left to try.
  assert.deepEqual(await feed.afterError(answers[0].login.version, '28P01', 'password authentication failed'),
    { action: 'no_other_credential', login: null })
  await assert.rejects(feed.afterError(-1, '28P01', 'x'), sr.InvalidArgument)
  await assert.rejects(feed.afterError(1, 28, 'x'), TypeError)
  await rotation.close()
  await store.close()
})

test('dynamic credentials: configure the catalog, issue, revoke, and a pool on a feed that renews on the store clock', async () => {
  const db = await freshDatabase('nodedyn')
  // The server compares VALID UNTIL with its own clock: start at now.
  const clock = Clock.manual(Date.now())
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32), clock })
  const leases = store.leaseManager(clock)
  await assert.rejects(DynamicPg.open(store, leases), sr.InvalidArgument)
  await store.secrets().put('infra/pg/admin-url', db.url)
  const catalog = `
connection_secret = "infra/pg/admin-url"

[roles.readonly]
default_ttl_secs = 600
grants = [{ privileges = ["Connect"], object = { Database = { name = "${db.name}" } } }]
`
  assert.equal(await configurePgCatalog(store, catalog), 1)
  await assert.rejects(configurePgCatalog(store, catalog), sr.InvalidArgument)
  await assert.rejects(configurePgCatalog(store, 'not = [toml', 1), sr.InvalidArgument)
  const dynamic = await DynamicPg.open(store, leases)
  assert.deepEqual(dynamic.roles(), ['readonly'])
  const issued = await dynamic.issue('readonly')
  assert.equal(issued.lease.ttlMs, 600_000)
  assert.equal(await loginWith(db, issued.username, issued.password.reveal().toString()), null)
  await leases.revoke(issued.lease.id)
  assert.equal(await loginWith(db, issued.username, issued.password.reveal().toString()), '28P01')
  await assert.rejects(dynamic.issue('nosuchrole'), sr.InvalidArgument)
  await assert.rejects(dynamic.issue('readonly', -1), sr.InvalidArgument)

  const feed = await dynamic.feed('readonly', { ttlMs: 120_000, refreshFraction: 0.5 })
  const pool = createPool(feed, { host: db.host, port: db.port, database: db.name, max: 2, maxUses: 1 })
  const first = (await pool.query('SELECT session_user AS u')).rows[0].u
  assert.equal(first, (await feed.login()).username)
  clock.advance(61_000)
  // The renewal runs on a task that waits on the store clock: let it run.
  let next = await feed.login()
  for (let i = 0; i < 200 && next.username === first; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    next = await feed.login()
  }
  assert.notEqual(next.username, first, 'the feed did not renew')
  assert.equal((await pool.query('SELECT session_user AS u')).rows[0].u, next.username)
  await pool.end()
  await assert.rejects(dynamic.feed('readonly', { refreshFraction: NaN }), sr.InvalidArgument)
  await assert.rejects(dynamic.feed('nosuchrole'), sr.InvalidArgument)
  await store.close()
})

test('bad PostgreSQL input is a typed error without the URL\'s password', async () => {
  const store = await Strongroom.open('memory:', { key: crypto.randomBytes(32) })
  await assert.rejects(PgRotation.open(store, 'db/x', 'postgres://a:hunter2@127.0.0.1:1/db', 'r', { mode: 'sideways' }), sr.InvalidArgument)
  const down = await PgRotation.open(store, 'db/x', 'postgres://a:hunter2@127.0.0.1:1/db', 'r').catch((e) => e)
  assert.ok(down instanceof sr.StorageError, `${down && down.name}`)
  assert.ok(!down.message.includes('hunter2'))
  const bad = await PgRotation.open(store, 'db/x', 'postgres://a:hunter2@127.0.0.1:notaport/db', 'r').catch((e) => e)
  assert.ok(bad instanceof sr.StorageError, `${bad && bad.name}`)
  assert.ok(!bad.message.includes('hunter2'))
  await assert.rejects(PgRotation.open(store, 'db/x', 5, 'r'), TypeError)
  await assert.rejects(PgRotation.open({}, 'db/x', 'postgres://a@h/d', 'r'), TypeError)
  assert.throws(() => createPool({}, {}), TypeError)
  await store.close()
  await assert.rejects(PgRotation.open(store, 'db/x', 'postgres://a@h/d', 'r'), sr.Closed)
})
