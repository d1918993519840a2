// Type declarations for the public API of `strongroom` (index.js / index.mjs).
// Written by hand to match index.js; test/types.test.js checks that every
// declared export exists at run time.

/// <reference types="node" />

/** Bytes accepted as a plaintext. Strings are encoded as UTF-8. */
export type Plaintext = Buffer | Uint8Array | string | Secret

/** Where a sealed value lives; bound into its associated data. */
export interface SealContext {
  /** The path, e.g. "prod/payment-svc/postgres". */
  path: string
  /** The secret version: a non-negative integer (a bigint above 2^53). */
  version: number | bigint
}

/** How the root key is supplied: raw bytes or an owner-only key file. */
export type KeySource =
  | { key: Buffer | Uint8Array | Secret; keyFile?: undefined }
  | { keyFile: string; key?: undefined }

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
  /** Whether the storage already holds a store. */
  isInitialized(): Promise<boolean>
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
}

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
  readonly reason: 'LoosePermissions' | 'Io' | 'BadContent' | 'Exists' | 'Other'
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
/** Reserved: raised once the core's policy module lands. */
export declare class PolicyDenied extends StrongroomError {}
/** Reserved: raised once the core's lease module lands. */
export declare class LeaseExpired extends StrongroomError {}
/** Reserved: raised once the core's secrets store lands. */
export declare class CasConflict extends StrongroomError {}
