'use strict'
// Alerts on unusual access (issue #16): an AlertEngine with a JavaScript
// callback, attached to an audit log, fed by principal handles. Time comes
// from the store's manual clock; nothing sleeps.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const sr = require('strongroom')
const { Strongroom, Policy, Clock, AlertEngine } = sr

const T0 = 1_800_000_000_000
const HOUR = 3_600_000

// Every rule off but those a test turns on, so the expectations are exact.
const OFF = {
  new_path: '[new_path]\nenabled = false\n',
  read_rate: '[read_rate]\nenabled = false\n',
  bulk_access: '[bulk_access]\nenabled = false\n',
  repeated_denials: '[repeated_denials]\nenabled = false\n',
  stale_version: '[stale_version]\nenabled = false\n'
}
function rules (on) {
  return Object.entries(OFF).filter(([k]) => !(k in on)).map(([, v]) => v).join('') +
    Object.values(on).join('')
}

const SENSITIVE = rules({ sensitive_read: '[sensitive_read]\nseverity = "critical"\npatterns = ["prod/admin/*"]\n' })

const ADMIN = `
name = "admin"
[[path]]
pattern = "prod/*"
capabilities = ["create", "read", "list"]
`

async function setup (config, callback) {
  const clock = Clock.manual(T0)
  const engine = new AlertEngine(config, callback)
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32), clock })
  const audit = await store.openAuditLog({ memory: true, alerts: engine })
  const svc = store.asPrincipal('svc', [Policy.fromToml(ADMIN)], audit)
  await svc.put('prod/app/db', 'app-pw')
  await svc.put('prod/admin/root', 'root-pw')
  return { clock, engine, store, audit, svc }
}

test('a sensitive read calls the callback with the rule, severity, principal, path and time; ordinary reads do not', async () => {
  const seen = []
  const { engine, store, svc } = await setup(SENSITIVE, (a) => { seen.push(a) })
  for (let i = 0; i < 3; i++) await svc.get('prod/app/db')
  await engine.settled()
  assert.deepEqual(seen, [])
  assert.equal(engine.stats().raised, 0)

  await svc.get('prod/admin/root')
  await engine.settled()
  assert.equal(seen.length, 1)
  const a = seen[0]
  assert.deepEqual([a.kind, a.severity, a.principal, a.path, a.atMs], ['sensitive_read', 'critical', 'svc', 'prod/admin/root', T0])
  assert.deepEqual(Object.keys(a).sort(), ['atMs', 'kind', 'path', 'principal', 'requestId', 'seq', 'severity', 'summary'])
  assert.ok(a.seq > 0 && a.requestId.length > 0)
  assert.match(a.summary, /prod\/admin\/root/)
  assert.doesNotMatch(JSON.stringify(a), /root-pw/)
  assert.deepEqual(engine.stats(), { raised: 1, delivered: 1, dropped: 0, sinkTimeouts: 0, callbackErrors: 0 })
  await store.close()
})

test('repeated denials and a first read of a never-read path raise their rules', async () => {
  const seen = []
  const config = rules({
    repeated_denials: '[repeated_denials]\nthreshold = 3\nwindow_secs = 60\nseverity = "critical"\n',
    new_path: '[new_path]\nlearning_period_secs = 3600\n'
  })
  const { clock, engine, store, audit, svc } = await setup(config, (a) => { seen.push(a) })
  const intruder = store.asPrincipal('intruder', [], audit)

  // Ordinary traffic during and after the learning period: nothing.
  await svc.get('prod/app/db')
  clock.advance(2 * HOUR)
  await svc.get('prod/app/db')
  await engine.settled()
  assert.deepEqual(seen, [])

  // A path svc never read, after its learning period: new_path (warning).
  await svc.get('prod/admin/root')
  await engine.settled()
  assert.deepEqual(seen.map((a) => [a.kind, a.severity, a.principal, a.path, a.atMs]),
    [['new_path', 'warning', 'svc', 'prod/admin/root', T0 + 2 * HOUR]])

  // Three denials within a minute: repeated_denials once.
  seen.length = 0
  for (let i = 0; i < 3; i++) {
    await assert.rejects(intruder.get(`prod/x${i}`), sr.PolicyDenied)
  }
  await engine.settled()
  assert.deepEqual(seen.map((a) => [a.kind, a.severity, a.principal, a.path]),
    [['repeated_denials', 'critical', 'intruder', 'prod/x2']])
  await store.close()
})

test('a throwing callback does not break the read, is counted and warned about; later alerts still come', async () => {
  const calls = []
  const warnings = []
  const onWarning = (w) => { if (w.name === 'StrongroomAlertWarning') warnings.push(w.message) }
  process.on('warning', onWarning)
  try {
    const { engine, store, svc } = await setup(SENSITIVE, (a) => {
      calls.push(a.path)
      if (calls.length === 1) throw new Error('callback broke')
    })
    assert.equal((await svc.get('prod/admin/root')).value.reveal().toString(), 'root-pw')
    await engine.settled()
    assert.equal((await svc.get('prod/admin/root')).value.reveal().toString(), 'root-pw')
    await engine.settled()
    assert.deepEqual(calls, ['prod/admin/root', 'prod/admin/root'])
    const s = engine.stats()
    assert.deepEqual([s.raised, s.delivered, s.callbackErrors], [2, 2, 1])
    await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on the next tick
    assert.deepEqual(warnings, ['the alert callback failed: callback broke'])
    await store.close()
  } finally {
    process.off('warning', onWarning)
  }
})

test('a slow async callback never holds up the operation; a rejected Promise counts as a failure', async () => {
  let release
  const gate = new Promise((resolve) => { release = resolve })
  const calls = []
  const { engine, store, svc } = await setup(SENSITIVE, async (a) => {
    calls.push(a.kind)
    if (calls.length === 1) await gate
    else throw new Error('async failure')
  })
  // The first alert's callback is still waiting; the reads complete anyway.
  await svc.get('prod/admin/root')
  await svc.get('prod/admin/root')
  assert.equal((await svc.get('prod/app/db')).value.reveal().toString(), 'app-pw')
  assert.equal(engine.stats().raised, 2)
  assert.equal(engine.stats().delivered, 0)
  release()
  await engine.settled()
  assert.deepEqual(calls, ['sensitive_read', 'sensitive_read'])
  assert.deepEqual(engine.stats(), { raised: 2, delivered: 2, dropped: 0, sinkTimeouts: 0, callbackErrors: 1 })
  await store.close()
})

test('a bad configuration or callback is refused', () => {
  assert.throws(() => new AlertEngine('[sensitive_read]\nfly = 1\n', () => {}), (e) => {
    assert.ok(e instanceof sr.InvalidArgument)
    assert.match(e.message, /fly/)
    return true
  })
  assert.throws(() => new AlertEngine(SENSITIVE, 42), TypeError)
  assert.throws(() => new AlertEngine(42, () => {}), TypeError)
})

test('a callback that never settles is given up after the sink timeout and counted', async () => {
  const config = SENSITIVE + '[delivery]\nsink_timeout_ms = 20\n'
  const { engine, store, svc } = await setup(config, () => new Promise(() => {}))
  await svc.get('prod/admin/root')
  await engine.settled()
  const s = engine.stats()
  assert.deepEqual([s.raised, s.sinkTimeouts, s.callbackErrors], [1, 1, 0])
  await store.close()
})

test('an engine with a pending callback does not keep the process alive', () => {
  const { execFileSync } = require('node:child_process')
  const script = `
    const { Strongroom, Policy, AlertEngine } = require(${JSON.stringify(require.resolve('strongroom'))})
    ;(async () => {
      const engine = new AlertEngine('[sensitive_read]\\npatterns = ["prod/*"]\\n', () => new Promise(() => {}))
      const store = await Strongroom.open(':memory:', { key: Buffer.alloc(32, 7) })
      const audit = await store.openAuditLog({ memory: true, alerts: engine })
      const svc = store.asPrincipal('svc', [Policy.fromToml('name = "a"\\n[[path]]\\npattern = "prod/*"\\ncapabilities = ["create", "read"]\\n')], audit)
      await svc.put('prod/db', 'pw')
      await svc.get('prod/db')
      process.stdout.write('done')
    })()
  `
  const out = execFileSync(process.execPath, ['-e', script], { timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] })
  assert.equal(out.toString(), 'done')
})
