// Compiled (not run) by test/types.test.js with `tsc --noEmit --strict`:
// uses the API the way callers do, so index.d.ts must match it.
import {
  Strongroom, Storage, Secret, sealWithKey, openSealed, sealedKeyVersion, generateKeyFile,
  StrongroomError, DecryptionFailed, UnknownKeyVersion, KeyInfo, RewrapReport, SealContext,
  SecretsStore, Policy, AuditLog, verifyAuditFile, VersionInfo, SecretValue, SecretMetadata,
  AuditReport, AuditCheckpoint, CasConflict, AuditChainBroken, PolicyDenied,
  Clock, LeaseManager, Lease, DueReport, LeaseEvent, LeaseExpired,
  RevocationRequest, PrefixRevocation, LeaseRevocationDeferred,
  ApiKeyRotation, RotationReport, StagedKeys, Matched, RotationStatus, RotationInvalidName, RotationRolledBack,
  Pkcs11Options, Closed,
  SigningKeys, Signature, SigningKeyInfo, SigningPublicKey, EthSignature, SigningError, SigningVersionRetired,
  SigningRateLimited, Pki, CaCertificate, IssuedCertificate, CertificateRevocationList,
  Approvals, ApprovalRequest, ApprovalGates, ApprovalRequired, AlertEngine, Alert, AlertStats,
  ShamirProtector, shamirSplit, shamirCombine, ShamirTooFewShares, InventoryEntry, MetadataUpdate,
  CredentialFeed, PgLogin, PgAfterError, PgRotation, DynamicPg, DynamicLogin, configurePgCatalog
} from 'strongroom'
import { createPool, StrongroomPool, StrongroomPoolClient } from 'strongroom/pg'

async function main (): Promise<void> {
  await generateKeyFile('/tmp/k')
  const storage: Storage = Storage.memory()
  const backend: string = storage.backend
  const initialised: boolean = await storage.isInitialized()
  const store: Strongroom = await Strongroom.open(storage, { keyFile: '/tmp/k' })
  const other: Strongroom = await Strongroom.init(':memory:', { key: Buffer.alloc(32), algorithm: 'chacha20-poly1305' })
  const ctx: SealContext = { path: 'prod/db', version: 1n }
  const sealed: Buffer = await store.sealValue('x', ctx)
  const secret: Secret = await store.openValue(sealed, { path: 'prod/db', version: 1 })
  const bytes: Buffer = secret.reveal()
  secret.wipe()
  await store.putSealed('s/a', new Secret('y'), ctx)
  const got: Secret | null = await store.getSealed('s/a', ctx)
  const k: KeyInfo = await store.rotate()
  const when: Date = k.created
  const keys: KeyInfo[] = store.keys()
  const report: RewrapReport = await store.rewrap({ batchSize: 10 })
  await store.setMinDecryptionVersion(2)
  await store.destroyKey(1)
  await store.promote(2)
  await store.reload()
  store.seal()
  const sealedNow: boolean = store.isSealed
  await store.unseal({ key: Buffer.alloc(32) })
  const raw: Buffer = sealWithKey(Buffer.alloc(32), 'aes-256-gcm', 1, 'p', 1, 'x')
  const opened: Secret = openSealed(Buffer.alloc(32), 'aes-256-gcm', 'p', 1, raw)
  const kv: number = sealedKeyVersion(raw)
  try {
    await store.openValue(raw, ctx)
  } catch (e) {
    if (e instanceof UnknownKeyVersion) {
      const n: number = e.version + e.latest
      void n
    }
    if (e instanceof DecryptionFailed) {
      const code: string = e.code
      const base: StrongroomError = e
      void code; void base
    }
  }
  void [backend, initialised, other, bytes, got, when, keys, report, sealedNow, opened, kv]

  const v: VersionInfo = await store.putSecret('prod/app/db', Buffer.from('pw'), { cas: 0 })
  const sv: SecretValue = await store.getSecret('prod/app/db', { version: v.version })
  const value: Secret = sv.value
  const names: string[] = await store.listSecrets('prod/app')
  const changed: number[] = await store.deleteSecret('prod/app/db', [1])
  await store.undeleteSecret('prod/app/db', changed)
  await store.destroySecret('prod/app/db')
  const md: SecretMetadata = await store.secretMetadata('prod/app/db')
  const policy: Policy = Policy.fromToml('name = "p"')
  const audit: AuditLog = await store.openAuditLog({ file: '/tmp/a.jsonl', memory: true })
  const svc: SecretsStore = store.asPrincipal('svc', [policy], audit)
  const who: string | null = svc.principal
  await svc.put('prod/app/db', 'x')
  const head: AuditCheckpoint = await audit.head()
  const lines: string[] = audit.memoryLines()
  const rep: AuditReport = await verifyAuditFile('/tmp/a.jsonl', store)
  try {
    await svc.get('prod/app/db')
  } catch (e) {
    if (e instanceof CasConflict) { const c: number = e.current; void c }
    if (e instanceof AuditChainBroken) { const s: number = e.seq; void s }
    if (e instanceof PolicyDenied) { const p: string = e.path; void p }
  }
  void [value, names, md.versions, who, head, lines, rep]

  const clock: Clock = Clock.manual(0)
  const leases: LeaseManager = store.leaseManager(clock)
  leases.registerEngine('db', async (l: Lease) => { void l.id })
  const lease: Lease = await leases.issue('prod/app/db', { ttlMs: 1000, engine: 'db' })
  clock.advance(2000)
  try {
    await leases.renew(lease.id, 1000)
  } catch (e) {
    if (e instanceof LeaseExpired) { const at: number = e.expired_at; void at }
  }
  const due: DueReport = await leases.runDue()
  const events: LeaseEvent[] = leases.takeEvents()
  void [due, events, store.leaseManager()]

  // S7 additions: revocation data, force / prefix revocation, quotas.
  const quota: LeaseManager = store.leaseManager(null, { maxLeases: 2 })
  quota.registerEngine('test', (r: RevocationRequest) => { void r.data.length })
  const withData: Lease = await quota.issue('db/creds/app', { engine: 'test', ttlMs: 60_000, data: 'role-1' })
  try {
    await quota.revoke(withData.id)
  } catch (e) {
    if (e instanceof LeaseRevocationDeferred) { const r: string = e.reason; const n: number = e.next_try; void [r, n] }
  }
  const forced: Lease = await quota.forceRevoke(withData.id)
  const pr: PrefixRevocation = await quota.revokePrefix('db')
  void [forced, pr.revoked, pr.pending]

  // S8: API-key rotation.
  const rot: ApiKeyRotation = await store.apiKeyRotation('svc/api-key', { prefix: 'sk_', chars: 32, gracePeriodMs: 0 })
  const rotated: RotationReport = await rot.rotateNow()
  const staged: StagedKeys = await rot.staged()
  const m: Matched = staged.current ? rot.verify(staged.current.secret) : 'no_match'
  const status: RotationStatus = await rot.status()
  const revokedNow: boolean = await rot.revokeDue()
  await rot.sync()
  const imported: number = await rot.importCurrent('legacy')
  await store.apiKeyRotation('svc/hex', { hexBytes: 16 })
  try {
    await store.apiKeyRotation('Bad Name', { chars: 32 })
  } catch (e) {
    if (e instanceof RotationInvalidName) { const c: string = e.credential; void c }
    if (e instanceof RotationRolledBack) { const s: string = e.step; void s }
  }
  void [rotated, m, status.history, revokedNow, imported]

  // Signing keys that never leave.
  const signingKeys: SigningKeys = store.signingKeys()
  const signer: SigningKeys = svc.signing(signingKeys)
  const skInfo: SigningKeyInfo = await signer.createKey('release/app', 'ed25519', { rateLimit: { perSecond: 10, burst: 20 } })
  await signer.rotateKey('release/app')
  await signer.setMinVerifyVersion('release/app', 2)
  await signer.setRateLimit('release/app', null)
  const sig: Signature = await signer.sign('release/app', Buffer.from('artifact'))
  const sigText: string = sig.text
  const ok: boolean = await signer.verify('release/app', 'artifact', Signature.parse(sigText))
  const pub: SigningPublicKey = await signingKeys.publicKey('release/app', { version: 2 })
  const addr: string = await signer.ethAddress('release/eth')
  const eth: EthSignature = await signer.ethSignPersonalMessage('release/eth', 'hello')
  const ethV: number | bigint = eth.v
  const tx: EthSignature = await signer.ethSignTransactionHash('release/eth', Buffer.alloc(32), 1n)
  try {
    await signer.verify('release/app', 'artifact', sig)
  } catch (e) {
    if (e instanceof SigningVersionRetired) { const mv: number = e.min_verify_version; void mv }
    if (e instanceof SigningRateLimited) { const ra: number = e.retry_after_ms; void ra }
    if (e instanceof SigningError) { const c: string = e.code; void c }
  }
  void [skInfo.versions[0].createdAt, sig.version, sig.bytes, ok, pub.spkiPem, pub.ethAddress, addr, ethV, tx.hex,
    signer.principal, (await signer.keyInfo('release/app')).rateLimit]

  // The internal CA.
  const pki: Pki = store.pki(leases, 'internal')
  const root: CaCertificate = await pki.createRoot(svc, { commonName: 'Root', keyType: 'ecdsa-p256', ttlMs: 86_400_000 })
  await pki.putRole(svc, 'web', { allowedNames: ['*.svc.example.com'], usages: ['server'], ttlMs: 3_600_000, maxTtlMs: 7_200_000 })
  const leaf: IssuedCertificate = await pki.issue(svc, 'web', { dnsNames: ['a.svc.example.com'], ipAddresses: ['10.0.0.1'] })
  const leafKey: Buffer = leaf.privateKey
  leaf.wipe()
  const revokedLease: string = await pki.revoke(svc, leaf.serial)
  const crl: CertificateRevocationList = await pki.crl(svc)
  const caNow: CaCertificate = await pki.ca(svc)
  void [root.certificatePem, root.notAfter, leaf.chainPem, leaf.certificate, leafKey, revokedLease, crl.der, crl.pem,
    crl.serials, caNow.parents, pki.mount, pki.engine]

  // S9: a PKCS#11 root key.
  const hsmOpts: Pkcs11Options = { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pin: '1234', keyLabel: 'k' }
  const hsm: Strongroom = await Strongroom.init(Storage.memory(), { pkcs11: hsmOpts })
  await hsm.unseal({ pkcs11: { ...hsmOpts, pin: Buffer.from('1234') } })

  // Lifetimes and push-style lease events.
  const pushed: LeaseManager = store.leaseManager(clock)
  pushed.on('revoked', (e: LeaseEvent) => { const forced: boolean | undefined = e.forced; void forced })
  pushed.on('event', (e) => { const k: string = e.kind; void k })
  const started: boolean = pushed.start()
  const running: boolean = pushed.isRunning
  for await (const e of pushed.events({ signal: AbortSignal.timeout(1) })) { const id: string | null = e.id; void id }
  const stopped: boolean = await pushed.stop()
  void [started, running, stopped]
  const closedStore: boolean = store.isClosed
  await store[Symbol.asyncDispose]()
  await store.close()
  const file: Storage = await Storage.open('x.db')
  await file.close()
  const sc: boolean = file.isClosed
  void [closedStore, sc]
  try { store.keys() } catch (e) { if (e instanceof Closed) { const c: string = e.code; void c } }

  // Approval gates and alerts.
  const seen: Alert[] = []
  const engine = new AlertEngine('[sensitive_read]\npatterns = ["prod/admin/*"]\n', (a: Alert) => { seen.push(a) })
  const asyncEngine = new AlertEngine('', async (a) => { const p: string | null = a.path; void p })
  const gated: Strongroom = await Strongroom.open(':memory:', { key: Buffer.alloc(32), clock: Clock.manual(0) })
  const gatedAudit: AuditLog = await gated.openAuditLog({ memory: true, alerts: engine })
  const ops: SecretsStore = gated.asPrincipal('ops', [], gatedAudit)
  const rev: number = await gated.setGates('', 0, { operator: ops })
  await gated.setGates('', 1n)
  const approvals: Approvals = ops.approvals()
  const req: ApprovalRequest = await approvals.request('destroy', 'prod/db', 'why', 3_600_000)
  const approved: ApprovalRequest = await approvals.approve(req.id)
  const refused: ApprovalRequest = await approvals.refuse(req.id)
  const all: ApprovalRequest[] = await approvals.list()
  const one: ApprovalRequest = await approvals.get(req.id)
  const gatesNow: ApprovalGates = await approvals.gates()
  try { await ops.withApproval(req.id).destroy('prod/db') } catch (e) {
    if (e instanceof ApprovalRequired) { const c: string = e.code; void c }
  }
  const stats: AlertStats = engine.stats()
  await engine.settled()
  void [rev, approved.state, refused.refusals[0].atMs, all, one.usedBy, gatesNow.gates[0].pattern, stats.callbackErrors,
    asyncEngine, approvals.principal, req.expiresMs]

  // Store locations, Shamir, root-key rotation, metadata and the inventory.
  const pgStorage: Storage = await Storage.open('postgres://app:pw@127.0.0.1:5432/app')
  await pgStorage.close()
  const texts: string[] = shamirSplit('launch code', 2, 3)
  const back: Secret = shamirCombine(texts.slice(0, 2))
  try { shamirCombine([texts[0]]) } catch (e) {
    if (e instanceof ShamirTooFewShares) { const c: string = e.code; void c }
  }
  const setup: { protector: ShamirProtector; shares: string[] } = ShamirProtector.generate(2, 3)
  const viaShares: Strongroom = await Strongroom.init(Storage.memory(), { shamir: setup.protector })
  await viaShares.unseal({ shamir: ShamirProtector.fromShares(setup.shares.slice(1)) })
  await viaShares.rotateRootKey({ key: Buffer.alloc(32) })
  await viaShares.rotateRootKey({ shamir: setup.protector })
  const update: MetadataUpdate = { owner: 'payments', tags: ['pci'], rotationIntervalMs: 86_400_000, clear: ['environment'] }
  const updated: SecretMetadata = await viaShares.secrets().updateMetadata('prod/db', update)
  const inv: InventoryEntry[] = await viaShares.inventory('prod/', { auditFile: 'audit.jsonl', tags: ['pci'], overdue: true, unreadForMs: 1000 })
  void [back, setup.protector.threshold, setup.protector.splitId, updated.owner, inv[0].lastReadAt, inv[0].rotationOverdue]

  // PostgreSQL: a rotated password, dynamic credentials, the pg pool.
  const pgStore: Strongroom = await Strongroom.open('postgres://app:pw@127.0.0.1:5432/app', { key: Buffer.alloc(32) })
  const pgRot: PgRotation = await PgRotation.open(pgStore, 'db/app', 'postgres://admin:pw@127.0.0.1/app', 'app',
    { mode: 'single', gracePeriodMs: 60_000 })
  await pgRot.rotateNow()
  const revoked: boolean = await pgRot.revokeDue()
  const feed: CredentialFeed = pgRot.credentialFeed()
  const login: PgLogin | null = await feed.login()
  if (login) {
    const next: PgAfterError = await feed.afterError(login.version, '28P01', 'password authentication failed')
    if (next.action === 'retry' && next.login) { const u: string = next.login.username; void u }
  }
  const pool: StrongroomPool = createPool(feed, { host: '127.0.0.1', port: 5432, database: 'app', max: 4, maxLoginRetries: 2 })
  const rows = (await pool.query<{ one: number }>('SELECT 1 AS one')).rows
  const client: StrongroomPoolClient = await pool.connect()
  client.release()
  await pool.end()
  const rev2: number = await configurePgCatalog(pgStore, 'connection_secret = "x"', 1)
  const dyn: DynamicPg = await DynamicPg.open(pgStore, pgStore.leaseManager())
  const issued: DynamicLogin = await dyn.issue('readonly', 60_000)
  const dynFeed: CredentialFeed = await dyn.feed('readonly', { ttlMs: 120_000, refreshFraction: 0.5 })
  void [revoked, rows[0].one, rev2, issued.lease.id, issued.password, dynFeed.refreshes, dyn.roles(), pool.feed, pgRot.name]
}

void main
