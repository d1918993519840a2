// Type declarations for the public API of `strongroom` (index.js / index.mjs).
// Written by hand to match index.js; test/types.test.js checks that every
// declared export exists at run time.

/// <reference types="node" />

import { EventEmitter } from 'node:events'

/** Bytes accepted as a plaintext. Strings are encoded as UTF-8. */
export type Plaintext = Buffer | Uint8Array | string | Secret

/** Where a sealed value lives; bound into its associated data. */
export interface SealContext {
  /** The path, e.g. "prod/payment-svc/postgres". */
  path: string
  /** The secret version: a non-negative integer (a bigint above 2^53). */
  version: number | bigint
}

/**
 * A key in a PKCS#11 token (an HSM; SoftHSM2 for tests) that wraps the root
 * key. A new store generates the token key (refused if `keyLabel` is taken);
 * unsealing opens it.
 */
export interface Pkcs11Options {
  /** The module library, e.g. "/usr/lib/softhsm/libsofthsm2.so". */
  module: string
  /** The token's label (not a slot id). */
  tokenLabel: string
  /** The user PIN (a string is copied into a Buffer that is zeroed after the call). */
  pin: string | Buffer | Uint8Array | Secret
  /** The label of the token key. */
  keyLabel: string
}

/** How the root key is supplied: raw bytes, an owner-only key file, a PKCS#11 token key, or Shamir shares. */
export type KeySource =
  | { key: Buffer | Uint8Array | Secret; keyFile?: undefined; pkcs11?: undefined; shamir?: undefined }
  | { keyFile: string; key?: undefined; pkcs11?: undefined; shamir?: undefined }
  | { pkcs11: Pkcs11Options; key?: undefined; keyFile?: undefined; shamir?: undefined }
  | { shamir: ShamirProtector; key?: undefined; keyFile?: undefined; pkcs11?: undefined }

/** The root keys rotateRootKey moves a store to (not a PKCS#11 token key). */
export type RootKeyTarget =
  | { key: Buffer | Uint8Array | Secret; keyFile?: undefined; shamir?: undefined }
  | { keyFile: string; key?: undefined; shamir?: undefined }
  | { shamir: ShamirProtector; key?: undefined; keyFile?: undefined }

/** Options of Strongroom.open / init / unseal. */
export type OpenOptions = KeySource & {
  /** AEAD for new keyring keys (default "aes-256-gcm"). */
  algorithm?: Algorithm
  /** The store's clock: times audit records and approval requests (default: the system clock). */
  clock?: Clock
}

export type Algorithm = 'aes-256-gcm' | 'chacha20-poly1305'
export type KeyState = 'primary' | 'active' | 'retired' | 'destroyed'

/** Public facts about one key version (no key material). */
export interface KeyInfo {
  version: number
  state: KeyState
  algorithm: Algorithm
  created: Date
  /** Encryptions reserved so far (an upper bound on encryptions done). */
  encryptionsReserved: number
}

/** What Strongroom.rewrap did. */
export interface RewrapReport {
  scanned: number
  rewrapped: number
  /** Storage keys of records that could not be opened (left untouched). */
  unreadable: string[]
  /** The key version everything was re-sealed to. */
  targetVersion: number
  /** Records still under another key version (unreadable ones included); retire older versions only when 0. */
  remaining: number
}

/**
 * A plaintext that does not print itself: toString(), toJSON(), template
 * literals and util.inspect show a redaction. Opened values are decrypted in
 * place in the Buffer the Secret wraps (the only copy of the plaintext);
 * garbage collection does not zero memory, so call wipe() when done.
 */
export declare class Secret {
  /** Wraps a Buffer (not copied: wipe() zeroes it) or a string. */
  constructor(bytes: Buffer | string)
  /** The secret's own bytes (not a copy; wipe() zeroes them). Throws SecretWiped after wipe(). */
  reveal(): Buffer
  /** Overwrites the bytes with zeros. */
  wipe(): void
  readonly wiped: boolean
  /** Length in bytes (not secret). */
  readonly length: number
  /** Always "[REDACTED]". */
  toString(): string
  /** Always "[REDACTED]". */
  toJSON(): string
}

/** Where a store keeps its sealed records. */
export declare class Storage {
  private constructor()
  /** A fresh in-memory storage (lost when the process ends). */
  static memory(): Storage
  /**
   * Opens the storage at `location`: a `postgres://user:password@host/db`
   * URL, `sqlite:<path>` or a plain path (an SQLite file, created if
   * missing), or "memory:" (also ":memory:"). Another scheme is
   * InvalidArgument; an unreachable server StorageError "storage.unavailable".
   */
  static open(location: string): Promise<Storage>
  /** "memory", "sqlite" or "postgres". */
  readonly backend: string
  /** Whether the storage already holds a store. Rejects with Closed after close(). */
  isInitialized(): Promise<boolean>
  /** Whether close() was called. */
  readonly isClosed: boolean
  /**
   * Closes the storage (an SQLite file's connections, writer thread and
   * change watcher, queued writes committed first, releasing the file; a
   * PostgreSQL storage's pool and change listener). Idempotent.
   */
  close(): Promise<void>
  /** close(): `await using storage = await Storage.open(path)`. */
  [Symbol.asyncDispose](): Promise<void>
}

/** A Strongroom store: a versioned keyring over a storage and a root key. */
export declare class Strongroom {
  private constructor()
  /** Unseals the store, creating it first if the storage is empty. */
  static open(storage: Storage | string, options: OpenOptions): Promise<Strongroom>
  /** Creates a new store; rejects with AlreadyInitialized if there is one. */
  static init(storage: Storage | string, options: OpenOptions): Promise<Strongroom>
  /** Unseals an existing store; rejects with NotInitialized if there is none. */
  static unseal(storage: Storage | string, options: OpenOptions): Promise<Strongroom>

  /** Seals a value under the primary key, bound to the context. */
  sealValue(plaintext: Plaintext, context: SealContext): Promise<Buffer>
  /** Opens a sealed value bound to the context. */
  openValue(sealed: Buffer | Uint8Array, context: SealContext): Promise<Secret>
  /** Stores a value sealed at storage key `key` (which starts with "s/"). */
  putSealed(key: string, plaintext: Plaintext, context: SealContext): Promise<void>
  /** Reads and opens the record at `key`; null if there is none. */
  getSealed(key: string, context: SealContext): Promise<Secret | null>

  /** Adds a key version and makes it primary. */
  rotate(): Promise<KeyInfo>
  /** Makes an active key version primary again. */
  promote(version: number): Promise<void>
  /** Retires key versions below `min` (they open nothing until it is lowered). */
  setMinDecryptionVersion(min: number): Promise<void>
  /** Erases a retired key version; rejects with KeyInUse while a record needs it. */
  destroyKey(version: number): Promise<void>
  /** Re-seals stored records under the primary key without returning plaintext. */
  rewrap(options?: { batchSize?: number }): Promise<RewrapReport>
  /** Re-reads the keyring from storage. */
  reload(): Promise<void>
  /** Facts about every key version, oldest first. Throws Sealed when sealed. */
  keys(): KeyInfo[]

  /** Forgets the keys; later calls fail with Sealed until unseal(). */
  seal(): void
  readonly isSealed: boolean
  /** Unseals this store again with its root key. */
  unseal(key: KeySource): Promise<void>
  /**
   * Replaces the root key with a fresh one wrapped by `target`: from then
   * on the store unseals only with that. Secrets and keyring keys are unchanged.
   */
  rotateRootKey(target: RootKeyTarget): Promise<void>
  /**
   * Every secret under `prefix` with its metadata, whether its rotation is
   * overdue and (given options.auditFile, verified first) its last read;
   * filtered. Values are never read.
   */
  inventory(prefix: string, options?: InventoryOptions): Promise<InventoryEntry[]>

  /** Whether close() was called. */
  readonly isClosed: boolean
  /**
   * Closes the store: forgets the keys, stops (and waits for) its lease
   * managers' schedulers and event forwarders, and closes the storage if
   * the store opened it from a path (a Storage object given to open() is
   * the caller's to close). Later calls on the store, its lease managers
   * and secrets stores reject (or throw) Closed. Idempotent: every call
   * returns the same promise.
   */
  close(): Promise<void>
  /** close(): `await using store = await Strongroom.open(...)`. */
  [Symbol.asyncDispose](): Promise<void>

  /** The versioned secrets store (no policy checks, no audit). */
  secrets(): SecretsStore
  /** secrets().put */
  putSecret(path: string, value: Plaintext, options?: PutOptions): Promise<VersionInfo>
  /** secrets().get */
  getSecret(path: string, options?: GetOptions): Promise<SecretValue>
  /** secrets().list */
  listSecrets(prefix: string): Promise<string[]>
  /** secrets().delete */
  deleteSecret(path: string, versions?: number[]): Promise<number[]>
  /** secrets().undelete */
  undeleteSecret(path: string, versions?: number[]): Promise<number[]>
  /** secrets().destroy */
  destroySecret(path: string, versions?: number[]): Promise<number[]>
  /** secrets().metadata */
  secretMetadata(path: string): Promise<SecretMetadata>

  /** Opens an audit log keyed by this store, continuing its saved chain. */
  openAuditLog(options: AuditLogOptions): Promise<AuditLog>
  /** The secrets store as seen by `principal` holding `policies`: every call checked and audited. */
  asPrincipal(principal: string, policies: Policy[], audit: AuditLog): SecretsStore

  /**
   * Replaces the store's approval gates with those of the gates file `toml`
   * if their revision is still `expectedRevision` (0 if never set;
   * ApprovalConflict otherwise), through the binding's door. Resolves to the new revision.
   */
  setGates(toml: string, expectedRevision: number | bigint, options?: SetGatesOptions): Promise<number>

  /**
   * A lease manager over this store (lease records are sealed under its
   * keys), timed by `clock` (default: the store's clock); `maxLeases` caps the live leases.
   */
  leaseManager(clock?: Clock | null, options?: LeaseManagerOptions): LeaseManager

  /** An API-key rotation of credential `name`; its verifier starts from the stored keys. */
  apiKeyRotation(name: string, options: ApiKeyRotationOptions): Promise<ApiKeyRotation>

  /**
   * The store's signing keys, made from the store as it is now (no policy
   * checks, no audit). Rate limits are enforced per object: keep one per process.
   */
  signingKeys(): SigningKeys

  /**
   * The internal CA mount `mount` of this store; its certificates are
   * leases of `leases` (a LeaseManager of this store).
   */
  pki(leases: LeaseManager, mount: string): Pki
}

/** Options of Strongroom.leaseManager. */
export interface LeaseManagerOptions {
  /** The most live leases (LeaseQuotaExceeded beyond). Default: unlimited. */
  maxLeases?: number
}

/** Options of Strongroom.apiKeyRotation: give `chars` or `hexBytes`. */
export type ApiKeyRotationOptions = {
  /** A fixed, non-secret prefix such as "sk_live_" (default ""). */
  prefix?: string
  /** How long the previous key stays valid after a rotation (default 1 hour). */
  gracePeriodMs?: number
  /** Attempts per rotation step before giving up (default 5). */
  maxAttempts?: number
} & (
  | { /** Base62 characters after the prefix (22 or more for 128 bits). */ chars: number; hexBytes?: undefined }
  | { /** Random bytes after the prefix, written in hex. */ hexBytes: number; chars?: undefined }
)

/** What ApiKeyRotation.verify matched. */
export type Matched = 'current' | 'previous' | 'no_match'

/** A stored key version. */
export interface StagedKey {
  version: number
  /** The non-secret identity (for API keys, the prefix). */
  identity: string
  secret: Secret
}

/** The stored key versions by stage. */
export interface StagedKeys {
  pending: StagedKey | null
  current: StagedKey | null
  previous: StagedKey | null
}

/** What rotateNow / resume did. */
export interface RotationReport {
  /** The version made current, if any. */
  promoted: number | null
  /** The previous version revoked, if any. */
  revoked: number | null
}

/** One version's history (no secret). */
export interface RotationVersionInfo {
  version: number
  identity: string
  createdAt: Date
  promotedAt: Date | null
  supersededAt: Date | null
  revokedAt: Date | null
  failedAt: Date | null
}

/** The non-secret state of a rotated credential. */
export interface RotationStatus {
  pending: number | null
  current: number | null
  previous: number | null
  /** When the previous version is due to be revoked. */
  revokePreviousAt: Date | null
  lastPromotedAt: Date | null
  /** A rotation step recorded but not finished ("create-pending", "set-in-target", ...). */
  inFlight: { step: string; version: number } | null
  /** Recent versions, oldest first. */
  history: RotationVersionInfo[]
}

/**
 * An API key rotated with overlap: versions move pending -> current ->
 * previous; verify() accepts the current key and, until revokeDue() revokes
 * it after the grace period, the previous one.
 */
export declare class ApiKeyRotation {
  private constructor()
  /** The credential name. */
  readonly name: string
  /** Makes a new key current (the current one becomes previous). */
  rotateNow(): Promise<RotationReport>
  /** Finishes an interrupted rotation; revokes the previous key if its grace period is over. */
  resume(): Promise<RotationReport>
  /** Revokes the previous key if its grace period is over; whether it did. */
  revokeDue(): Promise<boolean>
  status(): Promise<RotationStatus>
  /** The stored keys (secrets as Secret). */
  staged(): Promise<StagedKeys>
  /**
   * Adopts an existing key (not empty; it may predate the format) as the
   * current version; RotationAlreadyInitialized once there is one.
   */
  importCurrent(key: Plaintext): Promise<number>
  /** Reloads the verifier from storage (after another process rotated). */
  sync(): Promise<void>
  /** Checks a presented key in constant time. */
  verify(presented: Plaintext): Matched
}

/** A login for one PostgreSQL connection. */
export interface PgLogin {
  /** The stored version it came from (give it back to afterError). */
  version: number
  username: string
  password: Secret
}

/** What a pool should do after an error from the server. */
export interface PgAfterError {
  /** "retry": connect again with `login`; otherwise raise the server's error. */
  action: 'retry' | 'no_other_credential' | 'not_a_credential_error'
  login: PgLogin | null
}

/**
 * The logins a connection pool uses: the current stored version, and after
 * a refused login (28P01) the next one, once for all the connections that
 * report the same refusal. strongroom/pg's createPool uses it.
 */
export declare class CredentialFeed {
  private constructor()
  /** The login for a new connection; null while nothing is stored. */
  login(): Promise<PgLogin | null>
  /** Reports the server's answer (SQLSTATE `code`, `message`) to a login with `version`. */
  afterError(version: number, code: string, message: string): Promise<PgAfterError>
  /** How many refreshes refusals caused (one per refused version). */
  readonly refreshes: number
}

/** Options of PgRotation.open. */
export interface PgRotationOptions {
  /** "alternating" (default): roles <role>_a/<role>_b, created if missing; "single": ALTER ROLE on one existing role. */
  mode?: 'alternating' | 'single'
  /** How long the previous password keeps working (default 1 hour). */
  gracePeriodMs?: number
  /** Attempts per step (default 5). */
  maxAttempts?: number
}

/** A rotated PostgreSQL password. */
export declare class PgRotation {
  private constructor()
  /**
   * The rotation of credential `name` in `store` for `role` on the server
   * and database of `adminUrl` (a role with CREATEROLE). Does not rotate.
   */
  static open(store: Strongroom, name: string, adminUrl: string, role: string, options?: PgRotationOptions): Promise<PgRotation>
  readonly name: string
  rotateNow(): Promise<RotationReport>
  resume(): Promise<RotationReport>
  /** Revokes the previous password if its grace period is over (store clock); whether it did. */
  revokeDue(): Promise<boolean>
  status(): Promise<RotationStatus>
  /** The stored logins (identity: the role; secret: the password). */
  staged(): Promise<StagedKeys>
  /** A feed of this credential's logins for a connection pool. */
  credentialFeed(): CredentialFeed
  /** Closes the administrative connections. */
  close(): Promise<void>
}

/**
 * Stores `toml` as the store's role catalog for dynamic credentials (the
 * format of `strongroom creds configure`) in place of `expectedRevision`
 * (left out: none may exist yet); resolves to the new revision.
 */
export declare function configurePgCatalog(store: Strongroom, toml: string, expectedRevision?: number): Promise<number>

/** A dynamic credential: its lease and the login. */
export interface DynamicLogin {
  lease: Lease
  username: string
  password: Secret
}

/** Dynamic PostgreSQL credentials from the store's role catalog, issued as leases. */
export declare class DynamicPg {
  private constructor()
  /** Loads the catalog, connects with its connection secret, registers the revoker with `leases`. */
  static open(store: Strongroom, leases: LeaseManager): Promise<DynamicPg>
  roles(): string[]
  /** Issues a credential of `role` for `ttlMs` (default: the role's). */
  issue(role: string, ttlMs?: number): Promise<DynamicLogin>
  /** A feed renewing the credential once `refreshFraction` (default 0.5) of each TTL passed on the store clock. */
  feed(role: string, options?: { ttlMs?: number; refreshFraction?: number }): Promise<CredentialFeed>
}

/** A clock: the system clock, or a manual one tests move. */
export declare class Clock {
  private constructor()
  static system(): Clock
  /** A manual clock at `startMs` (ms since the epoch; default 0). */
  static manual(startMs?: number): Clock
  /** ms since the epoch. */
  now(): number
  /** Moves a manual clock forward; throws InvalidArgument for the system clock. */
  advance(ms: number): void
}

/** Public facts about a lease. */
export interface Lease {
  /** "lease_" and 32 hex digits. */
  id: string
  path: string
  engine: string
  issuedAt: Date
  ttlMs: number
  maxTtlMs: number
  expiresAt: Date
  maxExpiresAt: Date
  renewable: boolean
  /** "active", "revoked", or a pending revocation's description. */
  state: string
}

/** Options of LeaseManager.issue. */
export interface IssueOptions {
  /** The engine that revokes the lease (default and only built-in: "noop"). */
  engine?: string
  ttlMs: number
  /** Default: ttlMs. */
  maxTtlMs?: number
  /** Default: true. */
  renewable?: boolean
  /** What the engine's revoker needs (stored with the lease; given to the revoker as `lease.data`). */
  data?: Plaintext
}

/** What a revoker is called with: the lease and its revocation data. */
export interface RevocationRequest extends Lease {
  data: Buffer
}

/** What LeaseManager.revokePrefix did. */
export interface PrefixRevocation {
  /** Leases revoked. */
  revoked: string[]
  /** Leases whose revocation failed and is retried. */
  pending: string[]
}

/** What LeaseManager.runDue did. */
export interface DueReport {
  revoked: number
  deferred: number
  irrevocable: number
  expiringSoon: number
  errors: number
}

/** The kinds of lease events. */
export type LeaseEventKind = 'issued' | 'renewed' | 'expiring_soon' | 'revoked' | 'irrevocable' | 'other'

/** A lease event. */
export interface LeaseEvent {
  kind: LeaseEventKind
  id: string | null
  path: string | null
  /** issued, renewed, expiring_soon: the (new) expiry. */
  expiresAt?: Date
  /** renewed: whether the max TTL cut the renewal short. */
  capped?: boolean
  /** revoked: whether it was forced (the engine may not have revoked it). */
  forced?: boolean
  /** irrevocable: failed attempts. */
  attempts?: number
  /** irrevocable: the engine's last error message. */
  reason?: string
}

/**
 * Leases kept in a store, sealed under its keys. An EventEmitter: a
 * listener on 'event' (every event) or on a kind gets the lease events as
 * they happen. Neither listeners nor the scheduler keep the process alive.
 */
export declare class LeaseManager extends EventEmitter {
  private constructor()
  on(event: 'event' | LeaseEventKind, listener: (event: LeaseEvent) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'event' | LeaseEventKind, listener: (event: LeaseEvent) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
  off(event: 'event' | LeaseEventKind, listener: (event: LeaseEvent) => void): this
  off(event: string | symbol, listener: (...args: any[]) => void): this
  /** The lease events from now on; `signal` ends the iteration. */
  events(options?: { signal?: AbortSignal }): AsyncIterableIterator<LeaseEvent>
  /**
   * Starts the background scheduler (expired leases are revoked, and
   * expiring-soon events sent, when the clock reaches them; a manual clock
   * wakes it when advanced). False if it was running. Stops on stop(), the
   * store's close(), or when the manager is garbage-collected.
   */
  start(): boolean
  /** Stops the scheduler and waits for it; resolves to whether it was running. */
  stop(): Promise<boolean>
  /** Whether the scheduler is running. */
  readonly isRunning: boolean
  /** Registers an engine whose revocations call `revoke` (a rejection defers; the manager retries). */
  registerEngine(engine: string, revoke: (lease: RevocationRequest) => void | Promise<void>): void
  issue(path: string, options: IssueOptions): Promise<Lease>
  /** Rejects with LeaseExpired once the lease expired, LeaseNotRenewable, LeaseNotFound. */
  renew(id: string, incrementMs: number): Promise<Lease>
  /** Rejects with LeaseRevocationDeferred when the engine failed (the manager retries). */
  revoke(id: string): Promise<Lease>
  /** Removes a lease whatever its engine says (tried once, failure ignored). */
  forceRevoke(id: string): Promise<Lease>
  /** Revokes every lease under `prefix` ("" for all). */
  revokePrefix(prefix?: string): Promise<PrefixRevocation>
  lookup(id: string): Promise<Lease>
  list(prefix?: string): Promise<string[]>
  /** Revokes expired leases and sends expiring-soon events at the clock's current time. */
  runDue(): Promise<DueReport>
  /** The events since the last call, oldest first. */
  takeEvents(): LeaseEvent[]
}

/** Options of SecretsStore.put. */
export interface PutOptions {
  /** Check-and-set: the expected current version (0: the secret must not exist). */
  cas?: number | bigint
}

/** Options of SecretsStore.get. */
export interface GetOptions {
  /** A specific version (default: the newest). */
  version?: number | bigint
}

/** Facts about one version of a secret (never its value). */
export interface VersionInfo {
  version: number
  createdAt: Date
  deletedAt?: Date
  destroyedAt?: Date
}

/** A secret's value at one version. */
export interface SecretValue extends VersionInfo {
  value: Secret
}

/** A secret's metadata (no values). */
export interface SecretMetadata {
  path: string
  currentVersion: number
  oldestVersion: number
  maxVersions: number | null
  effectiveMaxVersions: number
  createdAt: Date
  updatedAt: Date
  lastRotatedAt: Date | null
  owner: string | null
  environment: string | null
  tags: string[]
  custom: Record<string, string>
  rotationIntervalMs: number | null
  /** Every kept version, oldest first. */
  versions: VersionInfo[]
}

/** Metadata fields updateMetadata can reset. */
export type ClearableMetadata = 'owner' | 'environment' | 'tags' | 'custom' | 'rotation_interval' | 'max_versions'

/** A metadata change: fields to set (left out: kept) and names to reset. */
export interface MetadataUpdate {
  owner?: string | null
  environment?: string | null
  /** Replaces the tag set. */
  tags?: string[] | null
  /** Replaces the custom key-values (never secrets). */
  custom?: Record<string, string> | null
  rotationIntervalMs?: number | null
  /** Lowering it prunes the oldest versions at once. */
  maxVersions?: number | null
  /** Fields to reset; an unknown name, or a field both set and cleared, is InvalidArgument. */
  clear?: ClearableMetadata[]
}

/** Options of Strongroom.inventory: the audit file and the filters (all optional). */
export interface InventoryOptions {
  /** The store's audit file, for last reads (verified first: an edited file is AuditChainBroken). */
  auditFile?: string
  owner?: string
  environment?: string
  /** Secrets carrying every one of these tags. */
  tags?: string[]
  /** Only secrets whose rotation is overdue. */
  overdue?: boolean
  /** Only secrets not read for at least this long (never read counts as not read). */
  unreadForMs?: number
}

/** One secret of an inventory. */
export interface InventoryEntry {
  metadata: SecretMetadata
  rotationOverdue: boolean
  /** The last successful value read in the audit file; null: none, or no file given. */
  lastReadAt: Date | null
}

/**
 * Splits `secret` into `shares` share texts (`srs1-...`, each secret), any
 * `threshold` of which rebuild it with shamirCombine.
 */
export declare function shamirSplit(secret: Plaintext, threshold: number, shares: number): string[]
/** Rebuilds a secret from at least `threshold` share texts (ShamirError's classes otherwise). */
export declare function shamirCombine(shares: string[]): Secret

/** A root-key protector whose key-encryption key exists only as Shamir shares. */
export declare class ShamirProtector {
  private constructor()
  /** A new random key-encryption key and its share texts. */
  static generate(threshold: number, shares: number): { protector: ShamirProtector; shares: string[] }
  /** The protector rebuilt from at least `threshold` share texts. */
  static fromShares(shares: string[]): ShamirProtector
  readonly threshold: number
  /** The split id (hex, not secret) the shares carry. */
  readonly splitId: string
}

/**
 * The versioned secrets store: the store itself (Strongroom.secrets()) or a
 * principal's view of it (Strongroom.asPrincipal()).
 */
export declare class SecretsStore {
  private constructor()
  /** The principal's name, or null for the store itself. */
  readonly principal: string | null
  /** Writes a new version; rejects with SecretCasMismatch (with `current`) when `cas` is stale. */
  put(path: string, value: Plaintext, options?: PutOptions): Promise<VersionInfo>
  /** Reads the newest version (or options.version); VersionDeleted, VersionDestroyed, NotFound otherwise. */
  get(path: string, options?: GetOptions): Promise<SecretValue>
  /** Names directly under `prefix` (sub-folders end with "/"). */
  list(prefix: string): Promise<string[]>
  /** Soft-deletes versions (the current one if none given); resolves to those changed. */
  delete(path: string, versions?: number[]): Promise<number[]>
  /** Restores soft-deleted versions; resolves to those changed. */
  undelete(path: string, versions?: number[]): Promise<number[]>
  /** Destroys versions (the current one if none given) for good; resolves to those changed. */
  destroy(path: string, versions?: number[]): Promise<number[]>
  /** The secret's metadata. */
  metadata(path: string): Promise<SecretMetadata>
  /** Changes the secret's metadata (a principal needs `update`); resolves to the result. */
  updateMetadata(path: string, update: MetadataUpdate): Promise<SecretMetadata>
  /**
   * `keys` as this principal: every call checked against its policies on
   * the key's name and audited. Throws InvalidArgument on store.secrets().
   */
  signing(keys: SigningKeys): SigningKeys
  /** This principal's approval requests. Throws InvalidArgument on store.secrets(). */
  approvals(): Approvals
  /**
   * This principal's handle with approval request `id`: its next gated call
   * (destroy, a read of a sensitive path) uses the approved request up.
   */
  withApproval(id: string): SecretsStore
}

/** Options of Strongroom.setGates. */
export interface SetGatesOptions {
  /** Who the change is audited under (a principal's SecretsStore); default: the binding's dangerous:node handle. */
  operator?: SecretsStore
}

/** An operation an approval gate can hold. */
export type GatedOperation = 'destroy' | 'sensitive_read' | 'root_key_rotate' | 'key_destroy' | 'apply_config'

/** Where an approval request stands. */
export type ApprovalState = 'pending' | 'approved' | 'refused' | 'used' | 'expired'

/** One approval or refusal. */
export interface ApprovalDecision {
  principal: string
  /** ms since the epoch (the store's clock). */
  atMs: number
}

/** One approval request, as read (plain data, no secret). */
export interface ApprovalRequest {
  /** 32 lower-case hex digits. */
  id: string
  operation: GatedOperation
  /** The canonical path (the system path for store-wide operations). */
  path: string
  /** Who asked (and alone may use it). */
  requester: string
  reason: string
  state: ApprovalState
  approvals: ApprovalDecision[]
  refusals: ApprovalDecision[]
  /** ms since the epoch. */
  createdMs: number
  /** ms since the epoch; past it the request is "expired" unless used. */
  expiresMs: number
  /** Who used it, once used. */
  usedBy: string | null
}

/** One gate: `operation` on paths `pattern` matches runs once `required` of `approvers` approved. */
export interface ApprovalGate {
  operation: GatedOperation
  /** null for the store-wide operations. */
  pattern: string | null
  required: number
  approvers: string[]
}

/** The store's gates and their revision. */
export interface ApprovalGates {
  /** 0 if never set, then one more per change: pass it to Strongroom.setGates. */
  revision: number
  gates: ApprovalGate[]
  /** The gates as a gates file (TOML). */
  toml: string
}

/** A principal's approval requests (SecretsStore.approvals()); every change is audited. */
export declare class Approvals {
  private constructor()
  /** The principal acting. */
  readonly principal: string
  /**
   * Asks for `operation` on `path` ("" for the store-wide operations) to
   * run once within `ttlMs`, for `reason`. ApprovalNoGate if no gate holds it.
   */
  request(operation: GatedOperation, path: string, reason: string, ttlMs: number): Promise<ApprovalRequest>
  /** Approves request `id`; ApprovalSelfApproval for the requester, ApprovalNotApprover for anyone no gate names. */
  approve(id: string): Promise<ApprovalRequest>
  /** Refuses request `id`: it can never run. */
  refuse(id: string): Promise<ApprovalRequest>
  /** Request `id`; ApprovalNotFound if there is none. */
  get(id: string): Promise<ApprovalRequest>
  /** Every stored request, oldest first. */
  list(): Promise<ApprovalRequest[]>
  /** The store's gates and their revision. */
  gates(): Promise<ApprovalGates>
}

/** The rule that raised an alert. */
export type AlertKind =
  | 'new_path' | 'read_rate' | 'bulk_access' | 'off_hours' | 'repeated_denials' | 'sensitive_read' | 'stale_version'

/** One alert (plain data: names, paths, counts; never a secret value). */
export interface Alert {
  kind: AlertKind
  severity: 'info' | 'warning' | 'critical'
  /** Who acted. */
  principal: string
  /** The path concerned (null for bulk access). */
  path: string | null
  /** The request id of the audit record that raised it. */
  requestId: string
  /** The sequence number of that record. */
  seq: number
  /** One line for people. */
  summary: string
  /** The record's time, ms since the epoch (the store's clock). */
  atMs: number
}

/** Counters of an AlertEngine since it started. */
export interface AlertStats {
  raised: number
  delivered: number
  /** Dropped because the queue was full. */
  dropped: number
  /** Callback calls given up after the sink timeout. */
  sinkTimeouts: number
  /** Callback calls that threw or whose Promise rejected. */
  callbackErrors: number
}

/**
 * Live alerting on the audit stream: the rules of `config` (TOML) run on
 * every record of the audit logs it is attached to
 * (Strongroom.openAuditLog({ alerts })); each alert is passed to `callback`
 * on the event loop, never during the audited call.
 */
export declare class AlertEngine {
  /** Throws InvalidArgument naming the mistake in `config`; TypeError if `callback` is not a function. */
  constructor(config: string, callback: (alert: Alert) => void | Promise<void>)
  stats(): AlertStats
  /** Resolves once every alert raised so far was handed to the callback (and it returned), dropped or timed out. */
  settled(): Promise<void>
}

/** A signing key's algorithm. */
export type SigningKeyType = 'ed25519' | 'ecdsa_p256' | 'secp256k1'

/** A per-key token bucket: `burst` signatures at once, refilled at `perSecond`. */
export interface RateLimit {
  perSecond: number
  burst: number
}

/** Options of SigningKeys.createKey. */
export interface CreateKeyOptions {
  rateLimit?: RateLimit
}

/** What is known about a signing key (no key material). */
export interface SigningKeyInfo {
  name: string
  keyType: SigningKeyType
  /** The newest version, used to sign. */
  latestVersion: number
  /** Signatures of older versions no longer verify. */
  minVerifyVersion: number
  /** Every version, oldest first. */
  versions: Array<{ version: number, createdAt: Date }>
  rateLimit: RateLimit | null
}

/** A public key of one version of a signing key. */
export interface SigningPublicKey {
  keyType: SigningKeyType
  version: number
  /** 32 bytes (Ed25519) or the 65-byte uncompressed point (P-256, secp256k1). */
  raw: Buffer
  /** SubjectPublicKeyInfo, DER. */
  spkiDer: Buffer
  /** SubjectPublicKeyInfo, PEM (`-----BEGIN PUBLIC KEY-----`). */
  spkiPem: string
  /** For secp256k1, the EIP-55 Ethereum address; null otherwise. */
  ethAddress: string | null
}

/** An Ethereum signature made by a secp256k1 key. */
export interface EthSignature {
  version: number
  /** 32 bytes, big-endian. */
  r: Buffer
  /** 32 bytes, big-endian (low half). */
  s: Buffer
  /** 27 or 28 for personal messages; chainId * 2 + 35 + recoveryId for transactions (a bigint above 2^53 - 1). */
  v: number | bigint
  recoveryId: number
  /** r || s || v (65 bytes whenever v < 256). */
  bytes: Buffer
  /** `bytes` as 0x-prefixed lower-case hex. */
  hex: string
}

/** A signature and the key version that made it; text form `strongroom:v<version>:<base64>`. */
export declare class Signature {
  private constructor()
  /** Parses the text form strictly; throws SigningBadSignatureEncoding otherwise. */
  static parse(text: string): Signature
  readonly version: number
  /** The signature bytes (a copy). */
  readonly bytes: Buffer
  /** The text form. */
  readonly text: string
  toString(): string
  toJSON(): string
}

/**
 * Signing keys that never leave the store: the store's own
 * (Strongroom.signingKeys(), unchecked) or a principal's view
 * (SecretsStore.signing(keys), checked and audited).
 */
export declare class SigningKeys {
  private constructor()
  /** The principal's name, or null for the store's own signing keys. */
  readonly principal: string | null
  /** Creates a key; SigningKeyExists if the name is taken. */
  createKey(name: string, keyType: SigningKeyType, options?: CreateKeyOptions): Promise<SigningKeyInfo>
  /** Adds a version, which signs from now on. */
  rotateKey(name: string): Promise<SigningKeyInfo>
  /** Raises the minimum verify version (older versions' signatures then fail with SigningVersionRetired). */
  setMinVerifyVersion(name: string, version: number): Promise<SigningKeyInfo>
  /** Sets the rate limit, or removes it (null). */
  setRateLimit(name: string, limit: RateLimit | null): Promise<SigningKeyInfo>
  keyInfo(name: string): Promise<SigningKeyInfo>
  /** The public key of options.version (the newest if none). */
  publicKey(name: string, options?: { version?: number }): Promise<SigningPublicKey>
  /** The EIP-55 address of a secp256k1 key. */
  ethAddress(name: string, options?: { version?: number }): Promise<string>
  /** Signs with the newest version. */
  sign(name: string, message: Buffer | Uint8Array | string): Promise<Signature>
  /** Whether the signature verifies; rejects with SigningVersionRetired for a retired version. */
  verify(name: string, message: Buffer | Uint8Array | string, signature: Signature | string): Promise<boolean>
  /** Signs an EIP-191 personal message with a secp256k1 key. */
  ethSignPersonalMessage(name: string, message: Buffer | Uint8Array | string): Promise<EthSignature>
  /** Signs a 32-byte EIP-155 transaction hash with a secp256k1 key. */
  ethSignTransactionHash(name: string, hash: Buffer | Uint8Array, chainId: number | bigint): Promise<EthSignature>
}

/** A key type of the internal CA. */
export type PkiKeyType = 'ed25519' | 'ecdsa-p256'
/** What a certificate may authenticate. */
export type CertificateUsage = 'server' | 'client'

/** What a new CA should be. */
export interface CaSpec {
  commonName: string
  /** Default "ed25519". */
  keyType?: PkiKeyType
  /** Validity from now (whole seconds count); default ten years. */
  ttlMs?: number
}

/** A CA's public side (its private key never leaves the store). */
export interface CaCertificate {
  mount: string
  kind: 'root' | 'intermediate'
  keyType: PkiKeyType
  commonName: string
  /** DER. */
  certificate: Buffer
  certificatePem: string
  /** The certificates above it, nearest first (empty for a root), DER. */
  parents: Buffer[]
  /** The certificate and its parents, PEM. */
  chainPem: string
  notBefore: Date
  notAfter: Date
}

/** Which certificates a role issues. */
export interface PkiRole {
  /** Exact DNS names or one-label patterns (`*.example.com`). */
  allowedNames: string[]
  allowLocalhost?: boolean
  allowIpSans?: boolean
  allowWildcardCertificates?: boolean
  keyTypes?: PkiKeyType[]
  usages?: CertificateUsage[]
  /** Default validity; give with maxTtlMs. */
  ttlMs?: number
  maxTtlMs?: number
}

/** A certificate request. */
export interface PkiIssueRequest {
  dnsNames: string[]
  ipAddresses?: string[]
  commonName?: string
  keyType?: PkiKeyType
  usages?: CertificateUsage[]
  ttlMs?: number
}

/**
 * A certificate just issued. The private key (PKCS#8 DER) is reachable
 * only through `privateKey`, never through util.inspect() or toJSON().
 */
export declare class IssuedCertificate {
  private constructor()
  /** Lower-case hex. */
  readonly serial: string
  /** The lease that revokes it. */
  readonly leaseId: string
  readonly keyType: PkiKeyType
  /** DER. */
  readonly certificate: Buffer
  /** The CA certificates above it, DER. */
  readonly caChain: Buffer[]
  readonly notBefore: Date
  readonly notAfter: Date
  readonly certificatePem: string
  /** The certificate followed by the CA chain, PEM. */
  readonly chainPem: string
  /** The private key, PKCS#8 DER (this Buffer itself: wipe() zeroes it); throws SecretWiped after wipe(). */
  readonly privateKey: Buffer
  /** Zeroes the private key. */
  wipe(): void
  toJSON(): object
}

/** A signed CRL. */
export interface CertificateRevocationList {
  der: Buffer
  pem: string
  number: number
  thisUpdate: Date
  nextUpdate: Date
  /** The revoked serials on it, lower-case hex. */
  serials: string[]
}

/**
 * A mount of the internal CA (Strongroom.pki()). Every call acts for a
 * principal (a SecretsStore from Strongroom.asPrincipal()).
 */
export declare class Pki {
  private constructor()
  readonly mount: string
  /** The lease engine of its certificates, `pki-<mount>`. */
  readonly engine: string
  /** Creates the root CA (`sudo` on pki/<mount>/ca). */
  createRoot(principal: SecretsStore, spec: CaSpec): Promise<CaCertificate>
  /** The CA certificate (`read` on pki/<mount>/ca). */
  ca(principal: SecretsStore): Promise<CaCertificate>
  /** Creates or replaces a role (`sudo` on pki/<mount>/role/<name>). */
  putRole(principal: SecretsStore, name: string, role: PkiRole): Promise<void>
  /** Issues a certificate (`lease` on pki/<mount>/issue/<role>). */
  issue(principal: SecretsStore, role: string, request: PkiIssueRequest): Promise<IssuedCertificate>
  /** Revokes a certificate by serial (hex); resolves to its lease id. */
  revoke(principal: SecretsStore, serial: string): Promise<string>
  /** The current CRL, signing a new one when due (`read` on pki/<mount>/crl). */
  crl(principal: SecretsStore): Promise<CertificateRevocationList>
}

/** A path policy. */
export declare class Policy {
  private constructor()
  /** Parses a policy from TOML; throws PolicyParse. */
  static fromToml(text: string): Policy
  readonly name: string
}

/** Options of Strongroom.openAuditLog: a file and/or memory. */
export interface AuditLogOptions {
  /** A JSON-lines file (verified first if it exists). */
  file?: string
  /** Also keep records in memory (AuditLog.memoryLines()). */
  memory?: boolean
  /** fsync after every record (default true). */
  fsync?: boolean
  /** An AlertEngine that sees every record the log writes. */
  alerts?: AlertEngine
}

/** The head of an audit chain. */
export interface AuditCheckpoint {
  seq: number
  mac: string
}

/** A tamper-evident audit log of one store. */
export declare class AuditLog {
  private constructor()
  /** The chain head after the last record. */
  head(): Promise<AuditCheckpoint>
  /** The JSON lines held in memory (empty without a memory sink). */
  memoryLines(): string[]
}

/** What verifyAuditFile saw. */
export interface AuditReport {
  records: number
  head: AuditCheckpoint
}

/**
 * Verifies a JSON-lines audit file with the store's audit key, up to the
 * store's saved head; rejects with AuditChainBroken (`seq`) otherwise.
 */
export declare function verifyAuditFile(path: string, store: Strongroom): Promise<AuditReport>

/** Seals with a raw 32-byte key (test vectors, interop). The nonce is random. */
export declare function sealWithKey(
  key: Buffer | Uint8Array,
  algorithm: Algorithm,
  keyVersion: number,
  path: string,
  version: number | bigint,
  plaintext: Plaintext
): Buffer

/** Opens a sealed value with a raw 32-byte key. */
export declare function openSealed(
  key: Buffer | Uint8Array,
  algorithm: Algorithm,
  path: string,
  version: number | bigint,
  sealed: Buffer | Uint8Array
): Secret

/** The keyring key version named in a sealed value's header. */
export declare function sealedKeyVersion(sealed: Buffer | Uint8Array): number

/** Creates a key file (mode 0600) holding a fresh random root key; never overwrites. */
export declare function generateKeyFile(path: string): Promise<void>

/** One row of the core's error table (docs/ERRORS.md). */
export interface ErrorCodeRow {
  /** The stable code, e.g. "secret.cas_mismatch". */
  readonly code: string
  /** The error class thrown for it. */
  readonly class: string
  /** That class's base class ("StrongroomError" or a family class). */
  readonly parent: string
  /** The coarser Error::kind() (the code written into audit records). */
  readonly kind: string
  /** [name, type] pairs; type is string, string?, u64, u64?, timestamp, list<string> or list<bool>. */
  readonly fields: ReadonlyArray<readonly [string, string]>
  /** What the error means. */
  readonly meaning: string
}

/** The core's error table, one row per code. */
export declare const ERROR_CODES: ReadonlyArray<ErrorCodeRow>
/** The name of every exported error class (table classes, Closed, SecretWiped, old-name aliases). */
export declare const ERROR_CLASSES: ReadonlyArray<string>

/**
 * Base class of every error Strongroom throws. The code's fields are own
 * properties under the table's names (times as integer milliseconds, absent
 * values as null).
 */
export declare class StrongroomError extends Error {
  /** The code of a class with a single code, e.g. "secret.cas_mismatch"; undefined otherwise. */
  static readonly code: string | undefined
  /** The stable code from the error table, e.g. "secret.cas_mismatch". */
  readonly code: string
  /** The code before the error table, e.g. "ERR_STRONGROOM_CAS_CONFLICT". */
  readonly legacyCode: string | undefined
}

// BEGIN GENERATED ERRORS (node scripts/gen-errors.js; from ERROR_CODES)
/** The binding's own (code "closed"): a call on a store, storage or lease manager after close(). */
export declare class Closed extends StrongroomError {}
/** The binding's own (code "secret_wiped"): reveal() on a wiped Secret. */
export declare class SecretWiped extends StrongroomError {}
/** The SecretError family. */
export declare class SecretError extends StrongroomError {}
/** The PolicyError family. */
export declare class PolicyError extends StrongroomError {}
/** The AuditError family. */
export declare class AuditError extends StrongroomError {}
/** The LeaseError family. */
export declare class LeaseError extends StrongroomError {}
/** The RotationError family. */
export declare class RotationError extends StrongroomError {}
/** The ShamirError family. */
export declare class ShamirError extends StrongroomError {}
/** The SigningError family. */
export declare class SigningError extends StrongroomError {}
/** The ApprovalError family. */
export declare class ApprovalError extends StrongroomError {}
/** The PkiError family. */
export declare class PkiError extends StrongroomError {}
/** Code "decryption_failed": a sealed value did not open (wrong key, tampering, moved value); deliberately says nothing more. */
export declare class DecryptionFailed extends StrongroomError {}
/** Code "malformed_sealed_value": the bytes are not a sealed value this build can read. */
export declare class MalformedSealedValue extends StrongroomError {
  readonly reason: string
}
/** Code "unknown_key_version": the sealed value names a key version the keyring does not have. */
export declare class UnknownKeyVersion extends StrongroomError {
  readonly version: number
  readonly latest: number
}
/** Code "key_version_retired": the key version exists but may no longer decrypt (retired or destroyed). */
export declare class KeyVersionRetired extends StrongroomError {
  readonly version: number
  readonly state: string
  readonly min_decryption_version: number
}
/** Code "invalid_key_transition": a key state change the key lifecycle forbids. */
export declare class InvalidKeyTransition extends StrongroomError {
  readonly version: number
  readonly from_state: string
  readonly to_state: string
}
/** Code "key_in_use": a key version still protects stored records; run rewrap first. */
export declare class KeyInUse extends StrongroomError {
  readonly version: number
  readonly records: number
  readonly example: string
}
/** Code "sealed": the store is sealed (its keys are not in memory); unseal it first. */
export declare class Sealed extends StrongroomError {}
/** Code "already_initialized": init was called on storage that already holds a store. */
export declare class AlreadyInitialized extends StrongroomError {}
/** Code "not_initialized": unseal was called on storage that holds no store. */
export declare class NotInitialized extends StrongroomError {}
/** Code "unseal_failed": the root key does not open this store's keyring. */
export declare class UnsealFailed extends StrongroomError {}
/** Code "storage_conflict": a storage record changed concurrently; re-read and retry. */
export declare class StorageConflict extends StrongroomError {
  readonly key: string
}
/** Code "corrupt_record": a stored record (not a sealed value) could not be decoded. */
export declare class CorruptRecord extends StrongroomError {
  readonly key: string
  readonly reason: string
}
/** Code "random_failed": the operating system's random number generator failed. */
export declare class RandomFailed extends StrongroomError {}
/** Code "invalid_argument": an argument cannot be used. */
export declare class InvalidArgument extends StrongroomError {
  readonly reason: string
}
/**
 * One class for several codes; `code` tells them apart:
 * - "path.empty": the path is empty
 * - "path.empty_segment": the path has an empty segment (double, leading or trailing '/')
 * - "path.dot_segment": the path has a '.' or '..' segment
 * - "path.bad_character": the path has a character outside a-z, 0-9, '-', '_', '.', '/'
 * - "path.upper_case": the path has upper-case letters
 * - "path.too_long": the path is longer than max bytes
 * - "path.too_deep": the path has more than max segments
 * - "path.reserved": the path is under the reserved 'sys' prefix
 */
export declare class InvalidPath extends StrongroomError {
  readonly path: string
  readonly character?: string
  readonly max?: number
}
/**
 * One class for several codes; `code` tells them apart:
 * - "key_file.loose_permissions": the key file can be read or written by group or others (chmod 600)
 * - "key_file.io": the key file could not be read or written
 * - "key_file.bad_content": the key file is not a base64-encoded 32-byte key
 * - "key_file.exists": the key file already exists (a root key is never overwritten)
 * - "key_file.wrong_owner": the key file belongs to another user than this process's
 * - "key_file.unsafe_directory": the key file's directory is writable by group or others
 * - "key_file.too_large": the file is larger than any key file
 */
export declare class KeyFileError extends StrongroomError {
  readonly path: string
  readonly mode?: number
  readonly detail?: string
  readonly uid?: number
  readonly expected?: number
  readonly dir?: string
  readonly limit?: number
}
/**
 * One class for several codes; `code` tells them apart:
 * - "protector.unwrap_failed": the wrapped root key did not unwrap (wrong key, another token, tampering)
 * - "protector.wrong_pin": the PIN was rejected
 * - "protector.pin_locked": the PIN is locked after too many failures
 * - "protector.token_not_found": no token with the configured label
 * - "protector.token_removed": the token was removed
 * - "protector.key_not_found": the wrapping key is not on the token
 * - "protector.mechanism_unsupported": the module does not support a needed mechanism
 * - "protector.module_not_found": the module library could not be loaded
 * - "protector.config": the protector's configuration is incomplete or contradictory
 * - "protector.device": the device reported another failure
 */
export declare class ProtectorError extends StrongroomError {
  readonly protector: string
  readonly detail: string
}
/**
 * One class for several codes; `code` tells them apart:
 * - "storage.unavailable": the backend could not be reached or opened
 * - "storage.corrupt": the backend's files or tables are damaged or not a Strongroom store
 * - "storage.rejected": the backend refused the operation (permissions, read-only, full disk)
 * - "storage.unsupported_version": a schema or format version this build does not understand
 * - "storage.other": an injected or otherwise unclassified storage fault
 */
export declare class StorageError extends StrongroomError {
  readonly backend: string
  readonly detail: string
}
/** Code "secret.not_found": no secret at the path, or it never had the version asked for. */
export declare class SecretNotFound extends SecretError {
  readonly path: string
  readonly version: number | null
}
/** Code "secret.version_deleted": the version was soft-deleted; undelete brings it back. */
export declare class SecretVersionDeleted extends SecretError {
  readonly path: string
  readonly version: number
  readonly deleted_at: number
}
/** Code "secret.version_destroyed": the version was destroyed and cannot be recovered. */
export declare class SecretVersionDestroyed extends SecretError {
  readonly path: string
  readonly version: number
  readonly destroyed_at: number
}
/** Code "secret.version_pruned": the version was pruned by max_versions and is gone. */
export declare class SecretVersionPruned extends SecretError {
  readonly path: string
  readonly version: number
  readonly oldest: number
}
/** Code "secret.cas_mismatch": a check-and-set write found another current version (0: absent); re-read and retry. */
export declare class SecretCasMismatch extends SecretError {
  readonly path: string
  readonly expected: number
  readonly current: number
}
/** Code "secret.invalid_metadata": metadata or an option is out of bounds. */
export declare class SecretInvalidMetadata extends SecretError {
  readonly path: string
  readonly reason: string
}
/** Code "secret.contended": other writers kept changing the secret; the write gave up. */
export declare class SecretContended extends SecretError {
  readonly path: string
  readonly attempts: number
}
/** Code "policy.denied": the principal's policies do not grant the capability on the path. */
export declare class PolicyDenied extends PolicyError {
  readonly principal: string
  readonly capability: string
  readonly path: string
}
/** Code "policy.parse": a policy text is wrong at this line and column. */
export declare class PolicyParse extends PolicyError {
  readonly source_name: string
  readonly line: number
  readonly column: number
  readonly detail: string
}
/** Code "policy.invalid_pattern": a pattern given in code is invalid. */
export declare class PolicyInvalidPattern extends PolicyError {
  readonly pattern: string
  readonly reason: string
}
/** Code "policy.unknown_capability": a capability name is not one of the known ones. */
export declare class PolicyUnknownCapability extends PolicyError {
  readonly capability: string
}
/** Code "policy.unknown_policy": a principal names a policy that is not loaded. */
export declare class PolicyUnknownPolicy extends PolicyError {
  readonly policy: string
}
/** Code "policy.io": a policy file could not be read. */
export declare class PolicyIo extends PolicyError {
  readonly path: string
  readonly detail: string
}
/** Code "audit.no_sink_accepted": no audit sink accepted the event, so the operation was refused. */
export declare class AuditNoSinkAccepted extends AuditError {
  readonly seq: number
  readonly sinks: string[]
  readonly timed_out: boolean[]
  readonly failures: string[]
}
/** Code "audit.sink": an audit sink failed to write a record. */
export declare class AuditSink extends AuditError {
  readonly sink: string
  readonly detail: string
}
/** Code "audit.chain_broken": the audit chain does not verify at this record. */
export declare class AuditChainBroken extends AuditError {
  readonly seq: number
  readonly break_kind: string
  readonly reason: string
}
/** Code "audit.malformed_record": a line is not an audit record of a known format. */
export declare class AuditMalformedRecord extends AuditError {
  readonly reason: string
}
/** Code "audit.weak_key": the audit key is too short. */
export declare class AuditWeakKey extends AuditError {
  readonly len: number
}
/** Code "audit.no_sinks": an audit log needs at least one sink. */
export declare class AuditNoSinks extends AuditError {}
/** Code "audit.sequence_exhausted": the audit sequence numbers are used up. */
export declare class AuditSequenceExhausted extends AuditError {}
/** Code "audit.io": an audit file could not be opened or read. */
export declare class AuditIo extends AuditError {
  readonly path: string
  readonly detail: string
}
/** Code "audit.encode": an audit record could not be encoded. */
export declare class AuditEncode extends AuditError {
  readonly reason: string
}
/** Code "lease.not_found": no lease with this id (never issued, or revoked). */
export declare class LeaseNotFound extends LeaseError {
  readonly id: string
}
/** Code "lease.invalid_id": the text is not a lease id. */
export declare class LeaseInvalidId extends LeaseError {
  readonly text: string
}
/** Code "lease.not_renewable": the lease was issued as not renewable. */
export declare class LeaseNotRenewable extends LeaseError {
  readonly id: string
}
/** Code "lease.expired": the lease has expired. */
export declare class LeaseExpired extends LeaseError {
  readonly id: string
  readonly expired_at: number
}
/** Code "lease.not_active": the lease is being revoked, revoked or irrevocable, so it cannot be renewed. */
export declare class LeaseNotActive extends LeaseError {
  readonly id: string
  readonly state: string
}
/** Code "lease.quota_exceeded": issuing would exceed a lease quota (scope total, or prefix). */
export declare class LeaseQuotaExceeded extends LeaseError {
  readonly scope: string
  readonly prefix: string | null
  readonly limit: number
  readonly count: number
}
/** Code "lease.no_revoker": no revoker is registered for the lease's engine. */
export declare class LeaseNoRevoker extends LeaseError {
  readonly engine: string
}
/** Code "lease.invalid_ttl": a TTL argument cannot be used. */
export declare class LeaseInvalidTtl extends LeaseError {
  readonly reason: string
}
/** Code "lease.invalid_engine": an engine name cannot be used. */
export declare class LeaseInvalidEngine extends LeaseError {
  readonly engine: string
}
/** Code "lease.revocation_deferred": the engine failed to revoke the lease; the manager retries at next_try. */
export declare class LeaseRevocationDeferred extends LeaseError {
  readonly id: string
  readonly attempts: number
  readonly next_try: number
  readonly reason: string
}
/** Code "lease.irrevocable": revocation failed too often; revoke again or force it. */
export declare class LeaseIrrevocable extends LeaseError {
  readonly id: string
  readonly attempts: number
  readonly reason: string
}
/** Code "lease.revoker_failed": a revoker failed for a reason of its own. */
export declare class LeaseRevokerFailed extends LeaseError {
  readonly engine: string
  readonly reason: string
}
/** Code "rotation.invalid_name": the credential name cannot be used. */
export declare class RotationInvalidName extends RotationError {
  readonly credential: string
  readonly reason: string
}
/** Code "rotation.busy": another process is rotating this credential until the given time. */
export declare class RotationBusy extends RotationError {
  readonly credential: string
  readonly owner: string
  readonly until: number
}
/** Code "rotation.lost_lock": another process took over the rotation; this one stopped. */
export declare class RotationLostLock extends RotationError {
  readonly credential: string
}
/** Code "rotation.step_failed": a rotation step kept failing; resume retries it. */
export declare class RotationStepFailed extends RotationError {
  readonly credential: string
  readonly version: number
  readonly step: string
  readonly attempts: number
  readonly detail: string
}
/** Code "rotation.rolled_back": the new version could not be set or tested and was rolled back. */
export declare class RotationRolledBack extends RotationError {
  readonly credential: string
  readonly version: number
  readonly step: string
  readonly detail: string
}
/** Code "rotation.already_initialized": the credential already has a current version. */
export declare class RotationAlreadyInitialized extends RotationError {
  readonly credential: string
}
/** Code "rotation.corrupt_state": the stored rotation state cannot be read. */
export declare class RotationCorruptState extends RotationError {
  readonly credential: string
  readonly reason: string
}
/** Code "rotation.audit_refused": the audit hook refused to record a step, so the step was not run. */
export declare class RotationAuditRefused extends RotationError {
  readonly credential: string
  readonly step: string
  readonly detail: string
}
/** Code "shamir.invalid_parameters": threshold or share count out of range, or an empty secret. */
export declare class ShamirInvalidParameters extends ShamirError {
  readonly reason: string
}
/** Code "shamir.no_shares": no shares were given. */
export declare class ShamirNoShares extends ShamirError {}
/** Code "shamir.too_few_shares": fewer distinct shares than the threshold. */
export declare class ShamirTooFewShares extends ShamirError {
  readonly needed: number
  readonly given: number
}
/** Code "shamir.duplicate_share": the same share was given twice. */
export declare class ShamirDuplicateShare extends ShamirError {
  readonly x: number
  readonly first: number
  readonly second: number
  readonly needed: number
}
/** Code "shamir.different_splits": shares from two different splits were mixed. */
export declare class ShamirDifferentSplits extends ShamirError {
  readonly index: number
  readonly expected: string
  readonly found: string
}
/** Code "shamir.corrupt_share": a share failed its checksum or is malformed. */
export declare class ShamirCorruptShare extends ShamirError {
  readonly index: number | null
  readonly reason: string
}
/** Code "signing.unknown_key": no signing key has this name. */
export declare class SigningUnknownKey extends SigningError {
  readonly key: string
}
/** Code "signing.key_exists": a signing key of this name exists already (perhaps just created by another process). */
export declare class SigningKeyExists extends SigningError {
  readonly key: string
}
/** Code "signing.unknown_version": the signing key has no such version. */
export declare class SigningUnknownVersion extends SigningError {
  readonly key: string
  readonly version: number
  readonly latest: number
}
/** Code "signing.version_retired": the version is below the key's minimum verify version: its signatures no longer verify. */
export declare class SigningVersionRetired extends SigningError {
  readonly key: string
  readonly version: number
  readonly min_verify_version: number
}
/** Code "signing.wrong_key_type": the operation needs another type of signing key. */
export declare class SigningWrongKeyType extends SigningError {
  readonly key: string
  readonly key_type: string
  readonly operation: string
  readonly needed: string
}
/** Code "signing.rate_limited": the key's rate limit is exhausted in this process; retry after the given milliseconds. */
export declare class SigningRateLimited extends SigningError {
  readonly key: string
  readonly retry_after_ms: number
}
/** Code "signing.bad_signature_encoding": a signature's text form cannot be parsed. */
export declare class SigningBadSignatureEncoding extends SigningError {
  readonly reason: string
}
/** Code "signing.conflict": the signing key changed concurrently; re-read and retry. */
export declare class SigningConflict extends SigningError {
  readonly key: string
}
/** Code "signing.corrupt_key": a stored private key cannot be opened or parsed. */
export declare class SigningCorruptKey extends SigningError {
  readonly key: string
  readonly version: number
  readonly reason: string
}
/** Code "signing.corrupt_record": a signing key's metadata record cannot be read. */
export declare class SigningCorruptRecord extends SigningError {
  readonly key: string
  readonly reason: string
}
/** Code "signing.invalid_min_verify_version": the minimum verify version can only be raised, up to the newest version. */
export declare class SigningInvalidMinVerifyVersion extends SigningError {
  readonly key: string
  readonly requested: number
  readonly current: number
  readonly latest: number
}
/** Code "signing.invalid_rate_limit": a rate limit needs at least 1 per second and a burst of at least 1. */
export declare class SigningInvalidRateLimit extends SigningError {
  readonly reason: string
}
/** Code "signing.invalid_chain_id": an EIP-155 chain id of zero or one whose v overflows. */
export declare class SigningInvalidChainId extends SigningError {
  readonly chain_id: number
}
/** Code "naming.violation": a write names a path that follows none of the applied naming rules; nothing was written. */
export declare class NamingViolation extends StrongroomError {
  readonly path: string
  readonly reason: string
}
/** Code "approval.required": a gate holds this operation on this path and no approved request was given; nothing was done. */
export declare class ApprovalRequired extends ApprovalError {
  readonly operation: string
  readonly path: string
}
/** Code "approval.not_found": no approval request has this id. */
export declare class ApprovalNotFound extends ApprovalError {
  readonly id: string
}
/** Code "approval.expired": the approval request's time to live ran out before it was used. */
export declare class ApprovalExpired extends ApprovalError {
  readonly id: string
  readonly expired_at: number
}
/** Code "approval.refused": an approver refused the request; it can never run. */
export declare class ApprovalRefused extends ApprovalError {
  readonly id: string
  readonly by: string
}
/** Code "approval.not_approved": the request does not yet have the approvals its gates need. */
export declare class ApprovalNotApproved extends ApprovalError {
  readonly id: string
  readonly approvals: number
  readonly required: number
}
/** Code "approval.used": the approved request has run already; it runs once. */
export declare class ApprovalUsed extends ApprovalError {
  readonly id: string
}
/** Code "approval.not_approver": no gate holding the request names this principal as an approver. */
export declare class ApprovalNotApprover extends ApprovalError {
  readonly id: string
  readonly principal: string
}
/** Code "approval.self_approval": the requester cannot approve its own request. */
export declare class ApprovalSelfApproval extends ApprovalError {
  readonly id: string
  readonly principal: string
}
/** Code "approval.already_approved": this principal has approved the request already; each approver counts once. */
export declare class ApprovalAlreadyApproved extends ApprovalError {
  readonly id: string
  readonly principal: string
}
/** Code "approval.mismatch": the request was made for another operation, path or requester. */
export declare class ApprovalMismatch extends ApprovalError {
  readonly id: string
  readonly what: string
}
/** Code "approval.no_gate": no gate holds this operation on this path; there is nothing to request. */
export declare class ApprovalNoGate extends ApprovalError {
  readonly operation: string
  readonly path: string
}
/** Code "approval.invalid_gates": a gates file or gate list is not valid (the line is given for files; no value is quoted). */
export declare class ApprovalInvalidGates extends ApprovalError {
  readonly line: number | null
  readonly reason: string
}
/** Code "approval.invalid_request": a request's reason, time to live or path cannot be used. */
export declare class ApprovalInvalidRequest extends ApprovalError {
  readonly reason: string
}
/** Code "approval.conflict": the gates or the request changed concurrently; re-read and retry. */
export declare class ApprovalConflict extends ApprovalError {
  readonly what: string
}
/** Code "pki.invalid_name": a mount or role name (`what`) is outside a-z, 0-9, '-' and '_', 1 to 64 bytes. */
export declare class PkiInvalidName extends PkiError {
  readonly what: string
  readonly given_name: string
}
/** Code "pki.ca_exists": the mount already holds a certificate authority; it is never replaced. */
export declare class PkiCaExists extends PkiError {
  readonly mount: string
}
/** Code "pki.unknown_ca": the mount holds no certificate authority yet; create a root or an intermediate first. */
export declare class PkiUnknownCa extends PkiError {
  readonly mount: string
}
/** Code "pki.unknown_role": the mount has no role of that name. */
export declare class PkiUnknownRole extends PkiError {
  readonly mount: string
  readonly role: string
}
/** Code "pki.invalid_role": a role definition cannot be used. */
export declare class PkiInvalidRole extends PkiError {
  readonly reason: string
}
/** Code "pki.name_not_allowed": the role does not allow the requested DNS name or IP address. */
export declare class PkiNameNotAllowed extends PkiError {
  readonly role: string
  readonly requested_name: string
  readonly reason: string
}
/** Code "pki.ttl_over_max": the requested ttl is over the role's max_ttl (both in seconds). */
export declare class PkiTtlOverMax extends PkiError {
  readonly role: string
  readonly requested_secs: number
  readonly max_secs: number
}
/** Code "pki.outlives_ca": the certificate would outlive the CA that signs it; ask for a shorter ttl. */
export declare class PkiOutlivesCa extends PkiError {
  readonly requested: number
  readonly ca_not_after: number
}
/** Code "pki.key_type_not_allowed": the role does not allow the requested key type (`allowed` is comma-separated). */
export declare class PkiKeyTypeNotAllowed extends PkiError {
  readonly role: string
  readonly requested: string
  readonly allowed: string
}
/** Code "pki.usage_not_allowed": the role does not allow the requested usage (server or client authentication). */
export declare class PkiUsageNotAllowed extends PkiError {
  readonly role: string
  readonly requested: string
}
/** Code "pki.invalid_request": a request that makes no sense whatever the role says (no names, a zero ttl, a malformed serial). */
export declare class PkiInvalidRequest extends PkiError {
  readonly reason: string
}
/** Code "pki.unknown_certificate": no live certificate of that serial (hex) on the mount: never issued, revoked, or expired and removed. */
export declare class PkiUnknownCertificate extends PkiError {
  readonly mount: string
  readonly serial: string
}
/** Code "pki.bad_record": a stored CA record failed authentication (edited, moved, forged) or does not decode. */
export declare class PkiBadRecord extends PkiError {
  readonly key: string
  readonly reason: string
}
/** Code "pki.certificate": building, signing or parsing a certificate or CRL failed. */
export declare class PkiCertificate extends PkiError {
  readonly detail: string
}
/** Code "pki.tls": rustls refused a key, chain or verifier configuration. */
export declare class PkiTls extends PkiError {
  readonly detail: string
}
/** Code "pki.contended": a CA record kept changing under other writers; retry later. */
export declare class PkiContended extends PkiError {
  readonly key: string
  readonly attempts: number
}
/** Old name of RandomFailed. */
export declare const RandomFailure: typeof RandomFailed
export type RandomFailure = RandomFailed
/** Old name of SecretCasMismatch. */
export declare const CasConflict: typeof SecretCasMismatch
export type CasConflict = SecretCasMismatch
/** Old name of SecretNotFound. */
export declare const NotFound: typeof SecretNotFound
export type NotFound = SecretNotFound
/** Old name of SecretVersionDeleted. */
export declare const VersionDeleted: typeof SecretVersionDeleted
export type VersionDeleted = SecretVersionDeleted
/** Old name of SecretVersionDestroyed. */
export declare const VersionDestroyed: typeof SecretVersionDestroyed
export type VersionDestroyed = SecretVersionDestroyed
/** Old name of SecretVersionPruned. */
export declare const VersionPruned: typeof SecretVersionPruned
export type VersionPruned = SecretVersionPruned
/** Old name of PolicyParse. */
export declare const PolicyParseError: typeof PolicyParse
export type PolicyParseError = PolicyParse
/** Old name of SecretError. */
export declare const SecretStoreError: typeof SecretError
export type SecretStoreError = SecretError
// END GENERATED ERRORS
