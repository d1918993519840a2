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

/** How the root key is supplied: raw bytes, an owner-only key file, or a PKCS#11 token key. */
export type KeySource =
  | { key: Buffer | Uint8Array | Secret; keyFile?: undefined; pkcs11?: undefined }
  | { keyFile: string; key?: undefined; pkcs11?: undefined }
  | { pkcs11: Pkcs11Options; key?: undefined; keyFile?: undefined }

/** Options of Strongroom.open / init / unseal. */
export type OpenOptions = KeySource & {
  /** AEAD for new keyring keys (default "aes-256-gcm"). */
  algorithm?: Algorithm
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
  /** Opens the SQLite file at `path` (created if missing); ":memory:" for a fresh in-memory storage. */
  static open(path: string): Promise<Storage>
  /** "memory", "sqlite", ... */
  readonly backend: string
  /** Whether the storage already holds a store. Rejects with Closed after close(). */
  isInitialized(): Promise<boolean>
  /** Whether close() was called. */
  readonly isClosed: boolean
  /**
   * Closes the storage (an SQLite file's connections, writer thread and
   * change watcher; queued writes are committed first), releasing the file.
   * Idempotent.
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
   * A lease manager over this store (lease records are sealed under its
   * keys), timed by `clock` (default: the store's clock); `maxLeases` caps the live leases.
   */
  leaseManager(clock?: Clock | null, options?: LeaseManagerOptions): LeaseManager

  /** An API-key rotation of credential `name`; its verifier starts from the stored keys. */
  apiKeyRotation(name: string, options: ApiKeyRotationOptions): Promise<ApiKeyRotation>
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

/**
 * The versioned secrets store: the store itself (Strongroom.secrets()) or a
 * principal's view of it (Strongroom.asPrincipal()).
 */
export declare class SecretsStore {
  private constructor()
  /** The principal's name, or null for the store itself. */
  readonly principal: string | null
  /** Writes a new version; rejects with CasConflict (with `current`) when `cas` is stale. */
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
}

/** A path policy. */
export declare class Policy {
  private constructor()
  /** Parses a policy from TOML; throws PolicyParseError. */
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

/** Base class of every error Strongroom throws. */
export declare class StrongroomError extends Error {
  /** The stable code of this class, e.g. "ERR_STRONGROOM_DECRYPTION_FAILED". */
  static readonly code: string
  readonly code: string
}

/** A call on a store, storage or lease manager after close(). */
export declare class Closed extends StrongroomError {}
/** A sealed value did not open (wrong key, tampered, or another context). Says nothing more. */
export declare class DecryptionFailed extends StrongroomError {}
/** The sealed value's framing is wrong. */
export declare class MalformedSealedValue extends StrongroomError {}
export declare class UnknownKeyVersion extends StrongroomError {
  readonly version: number
  readonly latest: number
}
export declare class KeyVersionRetired extends StrongroomError {
  readonly version: number
  readonly state: KeyState
  readonly minDecryptionVersion: number
}
export declare class InvalidKeyTransition extends StrongroomError {
  readonly version: number
  readonly from: KeyState
  readonly to: KeyState
}
export declare class KeyInUse extends StrongroomError {
  readonly version: number
  readonly records: number
  readonly example: string
}
export declare class InvalidPath extends StrongroomError {
  readonly path: string
  readonly reason: string
}
export declare class Sealed extends StrongroomError {}
export declare class AlreadyInitialized extends StrongroomError {}
export declare class NotInitialized extends StrongroomError {}
export declare class UnsealFailed extends StrongroomError {}
export declare class KeyFileError extends StrongroomError {
  readonly path: string
  readonly reason: 'LoosePermissions' | 'WrongOwner' | 'UnsafeDirectory' | 'TooLarge' | 'Io' | 'BadContent' | 'Exists' | 'Other'
}
export declare class ProtectorError extends StrongroomError {
  readonly protector: string
  /** e.g. "UnwrapFailed", "WrongPin", "TokenNotFound". */
  readonly kind: string
}
export declare class StorageError extends StrongroomError {
  readonly backend: string
  /** "Unavailable", "Corrupt", "Rejected", "UnsupportedVersion" or "Other". */
  readonly kind: string
}
export declare class StorageConflict extends StrongroomError {
  readonly key: string
}
export declare class CorruptRecord extends StrongroomError {
  readonly key: string
}
export declare class RandomFailure extends StrongroomError {}
export declare class InvalidArgument extends StrongroomError {}
/** reveal() after wipe(). */
export declare class SecretWiped extends StrongroomError {}
/** A principal's policies do not allow this; the attempt was audited. */
export declare class PolicyDenied extends StrongroomError {
  readonly principal: string
  readonly capability: string
  readonly path: string
}
/** The lease expired; request a new one. */
export declare class LeaseExpired extends StrongroomError {
  readonly id: string
  /** ms since the epoch. */
  readonly expiredAt: number
}
export declare class LeaseNotFound extends StrongroomError {
  readonly id: string
}
export declare class LeaseNotRenewable extends StrongroomError {
  readonly id: string
}
export declare class LeaseInvalidId extends StrongroomError {}
export declare class LeaseQuotaExceeded extends StrongroomError {
  readonly limit: number
  readonly count: number
}
export declare class LeaseNoRevoker extends StrongroomError {
  readonly engine: string
}
/** The lease is being revoked or irrevocable and cannot be renewed. */
export declare class LeaseNotActive extends StrongroomError {
  readonly id: string
  readonly state: string
}
export declare class LeaseInvalidTtl extends StrongroomError {}
export declare class LeaseInvalidEngine extends StrongroomError {
  readonly engine: string
}
/** The engine failed to revoke; the manager retries at `nextTry`. */
export declare class LeaseRevocationDeferred extends StrongroomError {
  readonly id: string
  readonly attempts: number
  /** ms since the epoch. */
  readonly nextTry: number
  /** The engine's failure (e.g. the revoker of engine "db" failed: ...). */
  readonly reason: string
}
/** Revocation failed too often; revoke again once the engine works, or forceRevoke. */
export declare class LeaseIrrevocable extends StrongroomError {
  readonly id: string
  readonly attempts: number
  readonly reason: string
}
/** A revoker failed on its own (a JavaScript revoker threw or rejected). */
export declare class LeaseRevokerFailed extends StrongroomError {
  readonly engine: string
  readonly reason: string
}
export declare class RotationInvalidName extends StrongroomError {
  /** The name refused (at most 64 characters of it). */
  readonly credential: string
  readonly reason: string
}
/** Another engine holds the credential's rotation lock until `until` (ms). */
export declare class RotationBusy extends StrongroomError {
  readonly credential: string
  readonly owner: string
  readonly until: number
}
export declare class RotationLostLock extends StrongroomError {
  readonly credential: string
}
/** A step kept failing; resume() retries it. */
export declare class RotationStepFailed extends StrongroomError {
  readonly credential: string
  readonly version: number
  readonly step: string
  readonly attempts: number
}
/** The new version failed and was discarded; the current one is unchanged. */
export declare class RotationRolledBack extends StrongroomError {
  readonly credential: string
  readonly version: number
  readonly step: string
}
export declare class RotationAlreadyInitialized extends StrongroomError {
  readonly credential: string
}
export declare class RotationCorruptState extends StrongroomError {
  readonly credential: string
}
export declare class RotationAuditRefused extends StrongroomError {
  readonly credential: string
  readonly step: string
}
/** A check-and-set write found another current version. */
export declare class CasConflict extends StrongroomError {
  readonly path: string
  /** The version the caller expected (0: absent). */
  readonly expected: number
  /** The actual current version (0: absent). */
  readonly current: number
}
/** No secret at this path, or no such version. */
export declare class NotFound extends StrongroomError {
  readonly path: string
  readonly version: number | null
}
/** The version was soft-deleted; undelete it to read it. */
export declare class VersionDeleted extends StrongroomError {
  readonly path: string
  readonly version: number
  /** ms since the epoch. */
  readonly deletedAt: number
}
/** The version was destroyed for good. */
export declare class VersionDestroyed extends StrongroomError {
  readonly path: string
  readonly version: number
  /** ms since the epoch. */
  readonly destroyedAt: number
}
/** The version was pruned (beyond max versions). */
export declare class VersionPruned extends StrongroomError {
  readonly path: string
  readonly version: number
  readonly oldest: number
}
/** A policy's TOML is wrong (the message gives line and column). */
export declare class PolicyParseError extends StrongroomError {}
/** An audit chain does not verify. */
export declare class AuditChainBroken extends StrongroomError {
  /** The first record that does not verify. */
  readonly seq: number
  /** What is wrong with it. */
  readonly reason: string
}
