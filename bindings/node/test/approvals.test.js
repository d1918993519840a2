'use strict'
// Approval gates (issue #16) through the binding: a gated destroy is refused
// with ApprovalRequired and destroys nothing; a request approved by two of
// three approvers runs once; self-approval, a refusal, expiry (on a manual
// clock), a sensitive-read gate and bad requests.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const util = require('node:util')
const sr = require('strongroom')
const { Strongroom, Policy, Clock, Approvals, SecretsStore } = sr

const ADMIN = `
name = "admin"
[[path]]
pattern = "prod/*"
capabilities = ["create", "read", "update", "delete", "list"]
`

const GATES = `
[[gate]]
operation = "destroy"
pattern = "prod/*"
required = 2
approvers = ["alice", "bob", "carol"]

[[gate]]
operation = "sensitive_read"
pattern = "prod/admin/*"
required = 1
approvers = ["alice"]
`

const HOUR = 3_600_000
const T0 = 1_800_000_000_000

async function setup (opts) {
  const store = await Strongroom.open(':memory:', { key: crypto.randomBytes(32), ...opts })
  const audit = await store.openAuditLog({ memory: true })
  const admin = Policy.fromToml(ADMIN)
  const as = (name) => store.asPrincipal(name, [admin], audit)
  return { store, audit, as }
}

test('gates: read, set with a revision, stale revision and bad gates refused', async () => {
  const { store, audit, as } = await setup()
  const ops = as('ops')
  const approvals = ops.approvals()
  assert.ok(approvals instanceof Approvals)
  assert.equal(approvals.principal, 'ops')
  assert.equal(util.inspect(approvals), 'Approvals { principal: ops }')
  assert.deepEqual(await approvals.gates(), { revision: 0, gates: [], toml: '' })

  assert.equal(await store.setGates(GATES, 0, { operator: ops }), 1)
  const g = await approvals.gates()
  assert.equal(g.revision, 1)
  assert.deepEqual(g.gates, [
    { operation: 'destroy', pattern: 'prod/*', required: 2, approvers: ['alice', 'bob', 'carol'] },
    { operation: 'sensitive_read', pattern: 'prod/admin/*', required: 1, approvers: ['alice'] }
  ])
  assert.match(g.toml, /sensitive_read/)

  // A stale revision is refused; the binding's own operator works too; a
  // bigint revision is accepted.
  await assert.rejects(store.setGates(GATES, 0), sr.ApprovalConflict)
  assert.equal(await store.setGates(g.toml, 1n), 2)
  await assert.rejects(store.setGates('[[gate]]\noperation = "fly"\n', 2), (e) => {
    assert.ok(e instanceof sr.ApprovalInvalidGates)
    assert.equal(e.code, 'approval.invalid_gates')
    return true
  })
  // The audit trail names who changed the gates (the operator); without
  // one, the binding's own door handle acts.
  const sets = audit.memoryLines().map((l) => JSON.parse(l).event).filter((e) => e.operation === 'approval_gates_set')
  assert.ok(sets.length > 0 && sets.every((e) => e.principal === 'ops'))
  await store.close()
})

test('destroy gated 2 of 3: refused without approval, runs once with two approvals', async () => {
  const { store, audit, as } = await setup()
  const [ops, alice, bob, eve] = ['ops', 'alice', 'bob', 'eve'].map(as)
  await ops.put('prod/db', 'pw-1')
  await store.setGates(GATES, 0)

  // Without an approved request: refused, nothing destroyed.
  await assert.rejects(ops.destroy('prod/db', [1]), (e) => {
    assert.ok(e instanceof sr.ApprovalRequired)
    assert.ok(e instanceof sr.ApprovalError)
    assert.ok(e instanceof sr.StrongroomError)
    assert.equal(e.code, 'approval.required')
    assert.equal(e.operation, 'destroy')
    assert.equal(e.path, 'prod/db')
    return true
  })
  assert.equal((await ops.get('prod/db')).value.reveal().toString(), 'pw-1')

  const req = await ops.approvals().request('destroy', 'prod/db', 'decommission', HOUR)
  assert.deepEqual(
    [req.operation, req.path, req.requester, req.reason, req.state, req.approvals, req.refusals, req.usedBy],
    ['destroy', 'prod/db', 'ops', 'decommission', 'pending', [], [], null])
  assert.match(req.id, /^[0-9a-f]{32}$/)
  assert.equal(typeof req.createdMs, 'number')
  assert.equal(req.expiresMs - req.createdMs, HOUR)

  // The requester cannot approve its own request; someone no gate names cannot either.
  await assert.rejects(ops.approvals().approve(req.id), (e) => {
    assert.ok(e instanceof sr.ApprovalSelfApproval)
    assert.equal(e.code, 'approval.self_approval')
    return true
  })
  await assert.rejects(eve.approvals().approve(req.id), sr.ApprovalNotApprover)

  let now = await alice.approvals().approve(req.id)
  assert.equal(now.state, 'pending')
  assert.deepEqual(now.approvals.map((d) => d.principal), ['alice'])
  await assert.rejects(alice.approvals().approve(req.id), sr.ApprovalAlreadyApproved)
  // One approval of two: not yet.
  await assert.rejects(ops.withApproval(req.id).destroy('prod/db', [1]), sr.ApprovalNotApproved)
  now = await bob.approvals().approve(req.id)
  assert.equal(now.state, 'approved')
  assert.deepEqual(now.approvals.map((d) => d.principal), ['alice', 'bob'])
  assert.ok(now.approvals.every((d) => d.atMs >= req.createdMs))

  // Someone else cannot use it.
  await assert.rejects(alice.withApproval(req.id).destroy('prod/db', [1]), sr.ApprovalMismatch)
  // Runs once.
  const approved = ops.withApproval(req.id)
  assert.ok(approved instanceof SecretsStore)
  assert.equal(approved.principal, 'ops')
  assert.deepEqual(await approved.destroy('prod/db', [1]), [1])
  assert.ok((await ops.metadata('prod/db')).versions[0].destroyedAt instanceof Date)
  await assert.rejects(approved.destroy('prod/db', [1]), (e) => {
    assert.ok(e instanceof sr.ApprovalUsed)
    assert.equal(e.code, 'approval.used')
    assert.equal(e.id, req.id)
    return true
  })

  const got = await alice.approvals().get(req.id)
  assert.equal(got.state, 'used')
  assert.equal(got.usedBy, 'ops')
  assert.deepEqual((await ops.approvals().list()).map((r) => r.id), [req.id])
  await assert.rejects(ops.approvals().get('0'.repeat(32)), sr.ApprovalNotFound)

  // Asking, approving and using are audited; the reason never is.
  const lines = audit.memoryLines().join('\n')
  for (const op of ['approval_request', 'approval_approve', 'approval_use']) assert.match(lines, new RegExp(op))
  assert.doesNotMatch(lines, /decommission/)
  await store.close()
})

test('a refusal ends the request', async () => {
  const { store, audit, as } = await setup()
  const [ops, alice, bob, carol] = ['ops', 'alice', 'bob', 'carol'].map(as)
  await ops.put('prod/db', 'pw')
  await store.setGates(GATES, 0)
  const req = await ops.approvals().request('destroy', 'prod/db', 'cleanup', HOUR)
  await alice.approvals().approve(req.id)
  const refused = await carol.approvals().refuse(req.id)
  assert.equal(refused.state, 'refused')
  assert.deepEqual(refused.refusals.map((d) => d.principal), ['carol'])
  await assert.rejects(bob.approvals().approve(req.id), sr.ApprovalRefused)
  await assert.rejects(ops.withApproval(req.id).destroy('prod/db', [1]), (e) => {
    assert.ok(e instanceof sr.ApprovalRefused)
    assert.equal(e.code, 'approval.refused')
    return true
  })
  assert.equal((await ops.get('prod/db')).value.reveal().toString(), 'pw')
  assert.ok(audit.memoryLines().some((l) => JSON.parse(l).event.operation === 'approval_refuse'))
  await store.close()
})

test('a request past its TTL on the store\'s manual clock expires', async () => {
  const clock = Clock.manual(T0)
  const { store, as } = await setup({ clock })
  const [ops, alice, bob] = ['ops', 'alice', 'bob'].map(as)
  await ops.put('prod/db', 'pw')
  await store.setGates(GATES, 0)

  const req = await ops.approvals().request('destroy', 'prod/db', 'cleanup', HOUR)
  assert.equal(req.createdMs, T0)
  assert.equal(req.expiresMs, T0 + HOUR)
  await alice.approvals().approve(req.id)
  clock.advance(HOUR)
  await assert.rejects(bob.approvals().approve(req.id), (e) => {
    assert.ok(e instanceof sr.ApprovalExpired)
    assert.equal(e.code, 'approval.expired')
    return true
  })
  assert.equal((await ops.approvals().get(req.id)).state, 'expired')

  // Approved, then expired before use: not usable either.
  const second = await ops.approvals().request('destroy', 'prod/db', 'cleanup', HOUR)
  await alice.approvals().approve(second.id)
  assert.equal((await bob.approvals().approve(second.id)).state, 'approved')
  clock.advance(HOUR + 1)
  await assert.rejects(ops.withApproval(second.id).destroy('prod/db', [1]), sr.ApprovalExpired)
  assert.equal((await ops.get('prod/db')).value.reveal().toString(), 'pw')
  await store.close()
})

test('a sensitive-read gate holds reads of matching paths only', async () => {
  const { store, as } = await setup()
  const [ops, alice] = ['ops', 'alice'].map(as)
  await ops.put('prod/admin/root', 'root-pw')
  await ops.put('prod/app/db', 'app-pw')
  await store.setGates(GATES, 0)

  assert.equal((await ops.get('prod/app/db')).value.reveal().toString(), 'app-pw')
  await assert.rejects(ops.get('prod/admin/root'), (e) => {
    assert.ok(e instanceof sr.ApprovalRequired)
    assert.equal(e.operation, 'sensitive_read')
    assert.doesNotMatch(e.message, /root-pw/)
    return true
  })
  const req = await ops.approvals().request('sensitive_read', 'prod/admin/root', 'incident 42', HOUR)
  await alice.approvals().approve(req.id)
  assert.equal((await ops.withApproval(req.id).get('prod/admin/root')).value.reveal().toString(), 'root-pw')
  await assert.rejects(ops.withApproval(req.id).get('prod/admin/root'), sr.ApprovalUsed)
  await store.close()
})

test('bad requests and calls without a principal are refused', async () => {
  const { store, as } = await setup()
  const ops = as('ops')
  await assert.rejects(ops.approvals().request('destroy', 'prod/db', 'why', HOUR), sr.ApprovalNoGate)
  await store.setGates(GATES, 0)
  await assert.rejects(ops.approvals().request('fly', 'prod/db', 'why', HOUR), (e) => {
    assert.ok(e instanceof sr.ApprovalInvalidRequest)
    assert.equal(e.code, 'approval.invalid_request')
    return true
  })
  await assert.rejects(ops.approvals().request('destroy', 'prod/db', '  ', HOUR), sr.ApprovalInvalidRequest)
  await assert.rejects(ops.approvals().request('destroy', 'prod/db', 'why', 0), sr.ApprovalInvalidRequest)
  await assert.rejects(ops.approvals().request('destroy', 'dev/db', 'why', HOUR), sr.ApprovalNoGate)
  await assert.rejects(ops.approvals().request('destroy', 'prod/db', 'why'), TypeError)
  await assert.rejects(ops.approvals().request('destroy', 'prod/db', 'why', -1), sr.InvalidArgument)
  // The store's own secrets object has no principal to ask or approve as.
  assert.throws(() => store.secrets().approvals(), sr.InvalidArgument)
  assert.throws(() => store.secrets().withApproval('0'.repeat(32)), sr.InvalidArgument)
  await assert.rejects(store.setGates(GATES, 1, { operator: store.secrets() }), sr.InvalidArgument)
  await assert.rejects(store.setGates(GATES, -1), (e) => {
    assert.ok(e instanceof sr.InvalidArgument)
    assert.match(e.message, /expectedRevision/)
    return true
  })
  await store.close()
  assert.throws(() => ops.approvals(), sr.Closed)
})
