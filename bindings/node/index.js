'use strict'
// The public JavaScript API of Strongroom. Every method converts its
// arguments, calls the native binding (binding.js, built by napi-rs from
// src/lib.rs) and maps errors to the classes below. No logic lives here.

const util = require('node:util')
const { EventEmitter, on: eventsOn } = require('node:events')
// Module-local bindings: a global `Buffer` lookup, and a property lookup on
// the binding's many exports, are measurable next to opening 1 KiB.
const { Buffer } = require('node:buffer')
const native = require('./binding.js')
const { sealValueInto, openValueInto } = native

const MARK = native.errorMark()
const HEADER_LEN = native.SEALED_HEADER_LEN
const OVERHEAD = native.SEALED_OVERHEAD
// Values at least this long are sealed on a worker thread.
const OFFLOAD_THRESHOLD = 64 * 1024

// Opens a sealed value through `openInPlace(buf)`, which opens a private
// copy in place and returns the plaintext length. That copy is the only
// copy of the plaintext; it is zeroed if opening fails.
function openCopy (sealed, openInPlace) {
  sealed = bytesArg('sealed', sealed)
  const buf = Buffer.allocUnsafe(sealed.length)
  sealed.copy(buf)
  try {
    const n = openInPlace(buf)
    return new Secret(buf.subarray(HEADER_LEN, HEADER_LEN + n))
  } catch (e) {
    buf.fill(0)
    throw e
  }
}

// ----- errors -----

// The error classes are not written out here: they are made from the core's
// error table (strongroom::ERROR_CODES, docs/ERRORS.md), which the addon
// hands over as JSON. Every distinct `class` of the table becomes a class
// deriving from its `parent` (a family class such as SecretError, itself
// deriving from StrongroomError). A native error carries Error::details():
// {code, class, parent, message, ...fields}; mapError throws the class it
// names with `code` and the fields as properties.

const ROOT_CLASS = 'StrongroomError'

/** The core's error table: one frozen row per code. */
const ERROR_CODES = Object.freeze(JSON.parse(native.errorCodesJson()).map((row) => Object.freeze({
  ...row,
  fields: Object.freeze(row.fields.map((f) => Object.freeze(f)))
})))

// The binding's own errors (no core code): a call after close(), and
// reveal() on a wiped Secret.
const BINDING_ERRORS = [
  { code: 'closed', class: 'Closed', legacyCode: 'ERR_STRONGROOM_CLOSED' },
  { code: 'secret_wiped', class: 'SecretWiped', legacyCode: 'ERR_STRONGROOM_SECRET_WIPED' }
]

// Old class names, kept as aliases of the table's classes.
const ERROR_ALIASES = Object.freeze({
  RandomFailure: 'RandomFailed',
  CasConflict: 'SecretCasMismatch',
  NotFound: 'SecretNotFound',
  VersionDeleted: 'SecretVersionDeleted',
  VersionDestroyed: 'SecretVersionDestroyed',
  VersionPruned: 'SecretVersionPruned',
  PolicyParseError: 'PolicyParse',
  // The Python binding's old name (kept there as an alias too).
  SecretStoreError: 'SecretError'
})

// The codes before the table (ERR_STRONGROOM_ + the upper-cased
// Error::kind(), CAS_CONFLICT for cas_mismatch), for err.legacyCode.
const legacyCodes = new Map()
const rowsByCode = new Map(ERROR_CODES.map((r) => [r.code, r]))
for (const row of ERROR_CODES) {
  legacyCodes.set(row.code,
    row.kind === 'cas_mismatch' ? 'ERR_STRONGROOM_CAS_CONFLICT' : `ERR_STRONGROOM_${row.kind.toUpperCase()}`)
}
for (const b of BINDING_ERRORS) legacyCodes.set(b.code, b.legacyCode)

// Keys of the wire object that are not fields.
const WIRE_KEYS = new Set(['code', 'class', 'parent', 'message'])

/**
 * Base class of every error Strongroom throws. `code` is the error's stable
 * code from the core's table (docs/ERRORS.md); the code's fields are own
 * enumerable properties under the table's names.
 */
class StrongroomError extends Error {
  constructor (message, details) {
    super(message)
    Object.defineProperty(this, 'name', {
      value: new.target.name,
      enumerable: false,
      configurable: true,
      writable: true
    })
    if (details) {
      // The table's order (the wire's JSON object has its keys sorted).
      const row = rowsByCode.get(details.code)
      if (row) {
        for (const [k] of row.fields) if (Object.hasOwn(details, k)) this[k] = details[k]
      }
      for (const [k, v] of Object.entries(details)) {
        if (!WIRE_KEYS.has(k) && !Object.hasOwn(this, k)) this[k] = v
      }
      if (typeof details.code === 'string') {
        Object.defineProperty(this, 'code', {
          value: details.code, enumerable: false, configurable: true, writable: true
        })
      }
    }
  }

  /** The stable code (the class's own, for a class with a single code). */
  get code () {
    return this.constructor.code
  }

  /** The code before the error table (`ERR_STRONGROOM_*`), for old callers. */
  get legacyCode () {
    return legacyCodes.get(this.code)
  }
}

const errorClasses = { StrongroomError }

function makeErrorClass (name, base) {
  // A named class so stack traces and `err.name` show it.
  const cls = { [name]: class extends base {} }[name]
  errorClasses[name] = cls
  return cls
}

// Family classes (parents other than the root) first, then the rest.
const tableClasses = []
for (const row of ERROR_CODES) {
  if (row.parent !== ROOT_CLASS && !tableClasses.includes(row.parent)) tableClasses.push(row.parent)
}
for (const row of ERROR_CODES) {
  if (!tableClasses.includes(row.class)) tableClasses.push(row.class)
}
for (const name of tableClasses) {
  const row = ERROR_CODES.find((r) => r.class === name)
  const parent = row ? row.parent : ROOT_CLASS
  const cls = makeErrorClass(name, errorClasses[parent])
  const codes = ERROR_CODES.filter((r) => r.class === name)
  // A class with a single code has it on the class too.
  if (codes.length === 1) cls.code = codes[0].code
}
for (const b of BINDING_ERRORS) makeErrorClass(b.class, StrongroomError).code = b.code
for (const [old, now] of Object.entries(ERROR_ALIASES)) errorClasses[old] = errorClasses[now]

/** The name of every error class exported (table, binding-only, aliases). */
const ERROR_CLASSES = Object.freeze([ROOT_CLASS, ...BINDING_ERRORS.map((b) => b.class), ...tableClasses,
  ...Object.keys(ERROR_ALIASES)])

/** Turns a native error into its Strongroom error class; other errors pass. */
function mapError (e) {
  if (e instanceof Error && typeof e.message === 'string' && e.message.startsWith(MARK)) {
    let details
    try {
      details = JSON.parse(e.message.slice(MARK.length))
    } catch {
      return new StrongroomError(e.message.slice(MARK.length))
    }
    const cls = Object.hasOwn(errorClasses, details.class) ? errorClasses[details.class] : StrongroomError
    return new cls(details.message, details)
  }
  return e
}

function rethrowMapped (e) {
  throw mapError(e)
}

function call (fn) {
  try {
    return fn()
  } catch (e) {
    throw mapError(e)
  }
}

async function callAsync (fn) {
  try {
    return await fn()
  } catch (e) {
    throw mapError(e)
  }
}

// ----- secrets -----

const REDACTED = '[REDACTED]'

/**
 * A plaintext that does not print itself. `reveal()` gives the bytes;
 * `wipe()` zeroes them. Opened values are decrypted in place in the Buffer
 * the Secret wraps, so that Buffer is the only copy of the plaintext.
 * JavaScript cannot zero memory on garbage collection: call wipe() when done.
 */
class Secret {
  #bytes
  #wiped = false

  /** Wraps a Buffer (not copied: wipe() zeroes it). */
  constructor (bytes) {
    if (typeof bytes === 'string') bytes = Buffer.from(bytes, 'utf8')
    if (!Buffer.isBuffer(bytes)) throw new TypeError('Secret wraps a Buffer or a string')
    this.#bytes = bytes
  }

  /**
   * The secret bytes. The Buffer returned is the secret's own storage, not
   * a copy: wipe() zeroes it too.
   */
  reveal () {
    if (this.#wiped) throw new errorClasses.SecretWiped('the secret was wiped')
    return this.#bytes
  }

  /** Overwrites the bytes with zeros; reveal() then throws. */
  wipe () {
    this.#bytes.fill(0)
    this.#wiped = true
  }

  /** Whether wipe() was called. */
  get wiped () {
    return this.#wiped
  }

  /** Length in bytes (not secret). */
  get length () {
    return this.#bytes.length
  }

  toString () {
    return REDACTED
  }

  toJSON () {
    return REDACTED
  }

  [Symbol.toPrimitive] () {
    return REDACTED
  }

  [util.inspect.custom] () {
    return this.#wiped ? 'Secret([WIPED])' : `Secret(${REDACTED})`
  }
}

function plaintextArg (p) {
  if (p instanceof Secret) return p.reveal()
  if (Buffer.isBuffer(p) || typeof p === 'string') return p
  if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength)
  throw new TypeError('plaintext must be a Buffer, Uint8Array, string or Secret')
}

function bytesArg (name, b) {
  if (Buffer.isBuffer(b)) return b
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  throw new TypeError(`${name} must be a Buffer or Uint8Array`)
}

function contextArg (ctx) {
  if (ctx === null || typeof ctx !== 'object' || typeof ctx.path !== 'string') {
    throw new TypeError('context must be { path: string, version: number | bigint }')
  }
  if (typeof ctx.version !== 'number' && typeof ctx.version !== 'bigint') {
    throw new TypeError('context.version must be a number or a bigint')
  }
  return ctx
}

// The root key options: [key, keyFile, pkcs11, wipe]. Call wipe() once the
// native call returned: it zeroes the PIN copy made here from a string.
function keyArgs (opts) {
  opts = opts || {}
  let key = opts.key
  if (key instanceof Secret) key = key.reveal()
  if (key !== undefined) key = bytesArg('key', key)
  if (opts.keyFile !== undefined && typeof opts.keyFile !== 'string') {
    throw new TypeError('keyFile must be a string path')
  }
  let pkcs11
  let wipe = () => {}
  if (opts.pkcs11 !== undefined) {
    const p = opts.pkcs11
    if (p === null || typeof p !== 'object') throw new TypeError('pkcs11 must be { module, tokenLabel, pin, keyLabel }')
    for (const f of ['module', 'tokenLabel', 'keyLabel']) {
      if (typeof p[f] !== 'string') throw new TypeError(`pkcs11.${f} must be a string`)
    }
    let pin = p.pin
    if (typeof pin === 'string') {
      pin = Buffer.from(pin, 'utf8')
      const copy = pin
      wipe = () => copy.fill(0)
    } else if (pin instanceof Secret) {
      pin = pin.reveal()
    } else {
      pin = bytesArg('pkcs11.pin', pin)
    }
    pkcs11 = { module: p.module, tokenLabel: p.tokenLabel, pin, keyLabel: p.keyLabel }
  }
  let shamir
  if (opts.shamir !== undefined) {
    if (!(opts.shamir instanceof ShamirProtector)) throw new TypeError('shamir must be a ShamirProtector')
    shamir = ShamirProtector.handle(opts.shamir)
  }
  return [key, opts.keyFile, pkcs11, wipe, shamir]
}

function keyInfo (k) {
  return {
    version: k.version,
    state: k.state,
    algorithm: k.algorithm,
    created: new Date(k.createdMs),
    encryptionsReserved: k.encryptionsReserved
  }
}

// ----- storage -----

/** Where a store keeps its (sealed) records. */
class Storage {
  #n
  #closing = null

  /** @private use Storage.memory() or Storage.open() */
  constructor (handle) {
    if (!(handle instanceof native.NativeStorage)) {
      throw new TypeError('use Storage.memory() or Storage.open(path)')
    }
    this.#n = handle
  }

  /** A fresh in-memory storage (lost when the process ends). */
  static memory () {
    return new Storage(native.NativeStorage.memory())
  }

  /**
   * Opens the storage at `location`: a `postgres://user:password@host/db`
   * URL (PostgreSQL, shared by a fleet), `sqlite:<path>` or a plain path
   * (an SQLite file, created if missing), or "memory:" (also ":memory:")
   * for a fresh in-memory storage. Another scheme is InvalidArgument; a
   * refused PostgreSQL login is a Storage error of kind "rejected". The URL
   * never appears in an error.
   */
  static async open (location) {
    if (typeof location !== 'string') throw new TypeError('location must be a string')
    return new Storage(await callAsync(() => native.openStorage(location)))
  }

  /** The backend's name ("memory", "sqlite", "postgres"). */
  get backend () {
    return this.#n.backend
  }

  /** Whether the storage already holds a store. */
  isInitialized () {
    if (this.#closing) return Promise.reject(new errorClasses.Closed('the storage is closed'))
    return callAsync(() => this.#n.isInitialized())
  }

  /** Whether close() was called. */
  get isClosed () {
    return this.#closing !== null
  }

  /**
   * Closes the storage: an SQLite file's connections, writer thread and
   * change watcher are closed (queued writes committed first) and the file
   * is released; a PostgreSQL storage's pool and change listener are closed. Idempotent. Stores opened on it fail afterwards; close
   * them first.
   */
  close () {
    this.#closing ??= callAsync(() => this.#n.close())
    return this.#closing
  }

  /** `await using storage = await Storage.open(path)` closes it at the end of the scope. */
  [Symbol.asyncDispose] () {
    return this.close()
  }

  /** @private */
  static handle (s) {
    if (s.#closing) throw new errorClasses.Closed('the storage is closed')
    return s.#n
  }

  [util.inspect.custom] () {
    return `Storage { backend: '${this.backend}'${this.#closing ? ', closed: true' : ''} }`
  }
}

// ----- the store -----

/** A Strongroom store. Create one with open(), init() or unseal(). */
class Strongroom {
  #n
  // The native store's id for the sealValueInto / openValueInto fast path.
  #id
  // The storage this store opened from a path (closed with it), or null.
  #owned
  // close()'s promise once it was called.
  #closing = null

  /** @private use Strongroom.open / init / unseal */
  constructor (handle, owned) {
    if (!(handle instanceof native.NativeStrongroom)) {
      throw new TypeError('use Strongroom.open(), Strongroom.init() or Strongroom.unseal()')
    }
    this.#n = handle
    this.#id = handle.id
    this.#owned = owned ?? null
  }

  /** @private the native handle (for the secrets, policy and audit methods below) */
  static handle (s) {
    return s.#n
  }

  static async #create (where, mode, opts) {
    let storage = where
    let owned = null
    if (typeof where === 'string') {
      storage = owned = await Storage.open(where)
    }
    if (!(storage instanceof Storage)) {
      throw new TypeError('give a Storage or a location (a path, a postgres:// URL or "memory:")')
    }
    try {
      const clock = opts && opts.clock != null ? opts.clock : undefined
      if (clock !== undefined && !(clock instanceof Clock)) throw new TypeError('clock must be a Clock')
      const [key, keyFile, pkcs11, wipe, shamir] = keyArgs(opts)
      let pending
      try {
        pending = call(() => native.openStore(Storage.handle(storage), mode, key, keyFile, opts && opts.algorithm, pkcs11,
          clock && Clock.handle(clock), shamir))
      } finally {
        wipe()
      }
      return new Strongroom(await pending.catch(rethrowMapped), owned)
    } catch (e) {
      // A storage opened here for a store that did not open is released.
      if (owned) await owned.close()
      throw e
    }
  }

  /**
   * Unseals the store in `storage` (a Storage, or a location as for
   * Storage.open: a path, a postgres:// URL, "memory:"), creating it first
   * if the storage is empty. opts: { key } (32 bytes), { keyFile },
   * { pkcs11 } or { shamir } (a ShamirProtector), and
   * optionally { algorithm } for new keys and { clock } (a Clock timing
   * audit records and approval requests; default: the system clock).
   */
  static open (storage, opts) {
    return Strongroom.#create(storage, 'open', opts)
  }

  /** Creates a new store; AlreadyInitialized if the storage holds one. */
  static init (storage, opts) {
    return Strongroom.#create(storage, 'init', opts)
  }

  /** Unseals an existing store; NotInitialized if the storage holds none. */
  static unseal (storage, opts) {
    return Strongroom.#create(storage, 'unseal', opts)
  }

  /** Seals a value under the primary key, bound to { path, version }. */
  sealValue (plaintext, context) {
    if (this.#closing) return Promise.reject(closedStore())
    try {
      const ctx = contextArg(context)
      const p = plaintextArg(plaintext)
      const len = typeof p === 'string' ? Buffer.byteLength(p) : p.length
      // Small values are sealed on this thread, straight into `out` (the
      // fast path names the store by its id); large ones, or a seal that has
      // to renew the key's encryption reservation in storage first, resolve
      // later with a new Buffer.
      if (len < OFFLOAD_THRESHOLD) {
        const out = Buffer.allocUnsafe(len + OVERHEAD)
        if (sealValueInto(this.#id, p, out, ctx.path, ctx.version)) return Promise.resolve(out)
      }
      return this.#n.sealValue(p, ctx.path, ctx.version).catch(rethrowMapped)
    } catch (e) {
      return Promise.reject(mapError(e))
    }
  }

  /**
   * Opens a sealed value bound to { path, version }; resolves to a Secret.
   * The plaintext is decrypted straight into the Secret's Buffer (its only
   * copy), which is zeroed if opening fails.
   */
  openValue (sealed, context) {
    if (this.#closing) return Promise.reject(closedStore())
    let out
    try {
      const ctx = contextArg(context)
      sealed = bytesArg('sealed', sealed)
      out = Buffer.allocUnsafe(sealed.length > OVERHEAD ? sealed.length - OVERHEAD : 0)
      openValueInto(this.#id, sealed, out, ctx.path, ctx.version)
      return Promise.resolve(new Secret(out))
    } catch (e) {
      if (out !== undefined) out.fill(0)
      return Promise.reject(mapError(e))
    }
  }

  /** Stores a value sealed at storage key `key` (which starts with "s/"). */
  putSealed (key, plaintext, context) {
    return callAsync(async () => {
      const ctx = contextArg(context)
      await this.#n.putSealed(key, plaintextArg(plaintext), ctx.path, ctx.version)
    })
  }

  /** Reads and opens the record at `key`; null if there is none. */
  getSealed (key, context) {
    return callAsync(async () => {
      const ctx = contextArg(context)
      const b = await this.#n.getSealed(key, ctx.path, ctx.version)
      return b == null ? null : new Secret(b)
    })
  }

  /** Adds a key version and makes it primary; resolves to its KeyInfo. */
  rotate () {
    return callAsync(async () => keyInfo(await this.#n.rotate()))
  }

  /** Makes an active key version primary again. */
  promote (version) {
    return callAsync(async () => { await this.#n.promote(version) })
  }

  /** Retires key versions below `min` (they open nothing until lowered). */
  setMinDecryptionVersion (min) {
    return callAsync(async () => { await this.#n.setMinDecryptionVersion(min) })
  }

  /** Erases a retired key version; KeyInUse while a stored record needs it. */
  destroyKey (version) {
    return callAsync(async () => { await this.#n.destroyKey(version) })
  }

  /** Re-seals stored records under the primary key, in batches. */
  rewrap (opts) {
    const batchSize = (opts && opts.batchSize) || 500
    return callAsync(() => this.#n.rewrap(batchSize))
  }

  /** Re-reads the keyring from storage (another process may have rotated). */
  reload () {
    return callAsync(async () => { await this.#n.reload() })
  }

  /** Facts about every key version, oldest first. */
  keys () {
    return call(() => this.#n.keys().map(keyInfo))
  }

  /** Forgets the keys: every later call throws Sealed until unseal(). */
  seal () {
    call(() => this.#n.seal())
  }

  /** Whether seal() was called. */
  get isSealed () {
    return call(() => this.#n.isSealed)
  }

  /** Unseals this store again with its root key ({ key }, { keyFile }, { pkcs11 } or { shamir }). */
  unseal (opts) {
    return callAsync(async () => {
      const [key, keyFile, pkcs11, wipe, shamir] = keyArgs(opts)
      let pending
      try {
        pending = this.#n.unseal(key, keyFile, pkcs11, shamir)
      } finally {
        wipe()
      }
      await pending
    })
  }

  /**
   * Replaces the root key with a fresh one wrapped by { key } (32 bytes),
   * { keyFile } or { shamir } (a ShamirProtector): from then on the store
   * unseals only with that. Secrets and keyring keys are unchanged.
   */
  rotateRootKey (opts) {
    if (this.#closing) return Promise.reject(closedStore())
    return callAsync(async () => {
      if (opts && opts.pkcs11 !== undefined) throw new TypeError('rotateRootKey takes { key }, { keyFile } or { shamir }')
      const [key, keyFile, , , shamir] = keyArgs(opts)
      await this.#n.rotateRootKey(key, keyFile, shamir)
    })
  }

  /**
   * Every secret under `prefix` with its metadata, whether its rotation is
   * overdue and, given opts.auditFile (the store's audit file, verified
   * first: an edited file is AuditChainBroken), when its value was last
   * read. opts filters: { owner, environment, tags (all of them), overdue,
   * unreadForMs (not read for at least this long; never read counts) }.
   * Values are never read. Resolves to [{ metadata, rotationOverdue, lastReadAt }].
   */
  inventory (prefix, opts) {
    if (this.#closing) return Promise.reject(closedStore())
    return callAsync(async () => {
      if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
      const f = objectArg('opts', opts ?? {})
      optionalArg('auditFile', f.auditFile, 'string')
      optionalArg('owner', f.owner, 'string')
      optionalArg('environment', f.environment, 'string')
      optionalArg('overdue', f.overdue, 'boolean')
      optionalArg('unreadForMs', f.unreadForMs, 'number')
      const tags = stringsArg('tags', f.tags)
      const entries = await this.#n.inventory(prefix, {
        auditFile: f.auditFile, owner: f.owner, environment: f.environment, tags, overdue: f.overdue, unreadForMs: f.unreadForMs
      })
      return entries.map((e) => ({
        metadata: metadataOut(e.metadata),
        rotationOverdue: e.rotationOverdue,
        lastReadAt: e.lastReadMs == null ? null : new Date(e.lastReadMs)
      }))
    })
  }

  /** Whether close() was called. */
  get isClosed () {
    return this.#closing !== null
  }

  /**
   * Closes the store: forgets the keys, stops and waits for the lease
   * managers' schedulers and event forwarders, and closes the storage if
   * the store opened it from a path (a Storage object given to open() is
   * the caller's to close). Later calls on the store, its lease managers
   * and secrets stores reject with Closed. Idempotent: every call returns
   * the same promise.
   */
  close () {
    this.#closing ??= callAsync(async () => {
      await this.#n.close()
      if (this.#owned) await this.#owned.close()
    })
    return this.#closing
  }

  /** `await using store = await Strongroom.open(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose] () {
    return this.close()
  }

  [util.inspect.custom] () {
    if (this.#closing) return 'Strongroom { closed: true }'
    return `Strongroom { sealed: ${this.isSealed} }`
  }
}

// An optional argument of JavaScript type `type`, else a TypeError.
function optionalArg (name, v, type) {
  if (v != null && typeof v !== type) throw new TypeError(`${name} must be a ${type}`)
}

// An optional array of strings (absent: []).
function stringsArg (name, v) {
  if (v == null) return []
  if (!Array.isArray(v) || !v.every((t) => typeof t === 'string')) throw new TypeError(`${name} must be an array of strings`)
  return v
}

function closedStore () {
  return new errorClasses.Closed('the store is closed')
}

// ----- versioned secrets, policies, audit -----

function versionsArg (versions) {
  if (versions === undefined || versions === null) return []
  if (!Array.isArray(versions)) throw new TypeError('versions must be an array of numbers')
  return versions
}

function versionInfo (v) {
  const out = { version: v.version, createdAt: new Date(v.createdMs) }
  if (v.deletedMs != null) out.deletedAt = new Date(v.deletedMs)
  if (v.destroyedMs != null) out.destroyedAt = new Date(v.destroyedMs)
  return out
}

function metadataOut (m) {
  return {
    path: m.path,
    currentVersion: m.currentVersion,
    oldestVersion: m.oldestVersion,
    maxVersions: m.maxVersions ?? null,
    effectiveMaxVersions: m.effectiveMaxVersions,
    createdAt: new Date(m.createdMs),
    updatedAt: new Date(m.updatedMs),
    lastRotatedAt: m.lastRotatedMs == null ? null : new Date(m.lastRotatedMs),
    owner: m.owner ?? null,
    environment: m.environment ?? null,
    tags: m.tags,
    custom: m.custom,
    rotationIntervalMs: m.rotationIntervalMs ?? null,
    versions: m.versions.map(versionInfo)
  }
}

/**
 * The versioned secrets store: the store itself (`store.secrets()`, no
 * policy checks or audit) or a principal's handle (`store.asPrincipal()`,
 * every call checked against its policies and audited).
 */
class SecretsStore {
  #n

  /** @private use store.secrets() or store.asPrincipal() */
  constructor (handle) {
    if (!(handle instanceof native.NativeSecrets)) {
      throw new TypeError('use store.secrets() or store.asPrincipal()')
    }
    this.#n = handle
  }

  /** The principal's name, or null for the store itself. */
  get principal () {
    return this.#n.principal ?? null
  }

  /**
   * Writes a new version. opts.cas: the expected current version (0: the
   * secret must not exist yet); CasConflict (with `current`) otherwise.
   */
  put (path, value, opts) {
    return callAsync(async () => {
      const cas = opts && opts.cas !== undefined ? opts.cas : undefined
      return versionInfo(await this.#n.put(path, plaintextArg(value), cas))
    })
  }

  /** Reads the newest version, or opts.version; resolves to { version, createdAt, value: Secret }. */
  get (path, opts) {
    return callAsync(async () => {
      const version = opts && opts.version !== undefined ? opts.version : undefined
      const r = await this.#n.get(path, version)
      return { ...versionInfo(r.info), value: new Secret(r.value) }
    })
  }

  /** Names directly under `prefix` (sub-folders end with "/"). */
  list (prefix) {
    return callAsync(() => this.#n.list(prefix))
  }

  /** Soft-deletes `versions` (the current one if none); resolves to those changed. */
  delete (path, versions) {
    return callAsync(async () => this.#n.delete(path, versionsArg(versions)))
  }

  /** Restores soft-deleted `versions`; resolves to those changed. */
  undelete (path, versions) {
    return callAsync(async () => this.#n.undelete(path, versionsArg(versions)))
  }

  /** Destroys `versions` (the current one if none) for good; resolves to those changed. */
  destroy (path, versions) {
    return callAsync(async () => this.#n.destroy(path, versionsArg(versions)))
  }

  /** The secret's metadata (no values). */
  metadata (path) {
    return callAsync(async () => metadataOut(await this.#n.metadata(path)))
  }

  /**
   * Changes the secret's metadata and resolves to the result. update:
   * { owner, environment, tags, custom, rotationIntervalMs, maxVersions }
   * to set (left out: kept) and clear: names of fields to reset ("owner",
   * "environment", "tags", "custom", "rotation_interval", "max_versions").
   * An unknown name, or a field both set and cleared, is InvalidArgument.
   * Through a principal's handle it needs `update` and is audited.
   */
  updateMetadata (path, update) {
    return callAsync(async () => {
      if (typeof path !== 'string') throw new TypeError('path must be a string')
      const u = objectArg('update', update)
      optionalArg('owner', u.owner, 'string')
      optionalArg('environment', u.environment, 'string')
      optionalArg('rotationIntervalMs', u.rotationIntervalMs, 'number')
      optionalArg('maxVersions', u.maxVersions, 'number')
      const custom = u.custom ?? undefined
      if (custom !== undefined) {
        objectArg('custom', custom)
        for (const v of Object.values(custom)) if (typeof v !== 'string') throw new TypeError('custom values must be strings')
      }
      return metadataOut(await this.#n.updateMetadata(path, {
        owner: u.owner ?? undefined,
        environment: u.environment ?? undefined,
        tags: u.tags == null ? undefined : stringsArg('tags', u.tags),
        custom,
        rotationIntervalMs: u.rotationIntervalMs ?? undefined,
        maxVersions: u.maxVersions ?? undefined,
        clear: stringsArg('clear', u.clear)
      }))
    })
  }

  [util.inspect.custom] () {
    return `SecretsStore { principal: ${this.principal} }`
  }

  static handle (s) {
    return s.#n
  }
}

/** A path policy, parsed from TOML. */
class Policy {
  #n

  /** @private use Policy.fromToml() */
  constructor (handle) {
    if (!(handle instanceof native.NativePolicy)) throw new TypeError('use Policy.fromToml(text)')
    this.#n = handle
  }

  /** Parses a policy from TOML; PolicyParse with line and column otherwise. */
  static fromToml (text) {
    if (typeof text !== 'string') throw new TypeError('policy TOML must be a string')
    return new Policy(call(() => native.NativePolicy.fromToml(text)))
  }

  /** The policy's name. */
  get name () {
    return this.#n.name
  }

  static handle (p) {
    return p.#n
  }
}

/** A tamper-evident audit log of one store. */
class AuditLog {
  #n

  /** @private use store.openAuditLog() */
  constructor (handle) {
    if (!(handle instanceof native.NativeAuditLog)) throw new TypeError('use store.openAuditLog()')
    this.#n = handle
  }

  /** The chain head { seq, mac } after the last record. */
  head () {
    return callAsync(() => this.#n.head())
  }

  /** The JSON lines the memory sink holds (empty without one). */
  memoryLines () {
    return this.#n.memoryLines()
  }

  static handle (a) {
    return a.#n
  }
}

Strongroom.prototype.secrets = function secrets () {
  return new SecretsStore(Strongroom.handle(this).secrets())
}
for (const [name, op] of [
  ['putSecret', 'put'], ['getSecret', 'get'], ['listSecrets', 'list'],
  ['deleteSecret', 'delete'], ['undeleteSecret', 'undelete'],
  ['destroySecret', 'destroy'], ['secretMetadata', 'metadata']
]) {
  Object.defineProperty(Strongroom.prototype, name, {
    value: { [name] (...args) { return this.secrets()[op](...args) } }[name],
    writable: true,
    configurable: true
  })
}

/**
 * Opens an audit log keyed by this store, continuing its saved chain:
 * opts.file (a JSON-lines file, verified first if it exists; fsync after
 * every record unless opts.fsync is false) and/or opts.memory. With
 * opts.alerts (an AlertEngine), the engine sees every record the log writes.
 */
Strongroom.prototype.openAuditLog = function openAuditLog (opts) {
  return callAsync(async () => {
    opts = opts || {}
    if (opts.file !== undefined && typeof opts.file !== 'string') throw new TypeError('file must be a string path')
    if (opts.file === undefined && !opts.memory) throw new TypeError('give opts.file and/or opts.memory: true')
    const alerts = opts.alerts != null ? opts.alerts : undefined
    if (alerts !== undefined && !(alerts instanceof AlertEngine)) throw new TypeError('alerts must be an AlertEngine')
    return new AuditLog(await Strongroom.handle(this).openAuditLog(opts.file, Boolean(opts.memory), opts.fsync,
      alerts && AlertEngine.handle(alerts)))
  })
}

/** A SecretsStore through which principal `name`, holding `policies`, acts; audited to `audit`. */
Strongroom.prototype.asPrincipal = function asPrincipal (name, policies, audit) {
  return call(() => {
    if (typeof name !== 'string') throw new TypeError('principal name must be a string')
    if (!Array.isArray(policies) || !policies.every((p) => p instanceof Policy)) {
      throw new TypeError('policies must be an array of Policy')
    }
    if (!(audit instanceof AuditLog)) throw new TypeError('audit must be an AuditLog')
    return new SecretsStore(Strongroom.handle(this).asPrincipal(name, policies.map(Policy.handle),
      AuditLog.handle(audit)))
  })
}

/**
 * Verifies the JSON-lines audit file at `path` with the store's audit key,
 * up to the store's saved head. Resolves to { records, head }; rejects with
 * AuditChainBroken (its `seq` is the first bad record) otherwise.
 */
function verifyAuditFile (path, store) {
  return callAsync(async () => {
    if (!(store instanceof Strongroom)) throw new TypeError('give the Strongroom that wrote the log')
    return Strongroom.handle(store).verifyAuditFile(path)
  })
}

// ----- leases -----

/** A clock: Clock.system() or Clock.manual(startMs), which tests move with advance(ms). */
class Clock {
  #n

  /** @private use Clock.system() or Clock.manual() */
  constructor (handle) {
    if (!(handle instanceof native.NativeClock)) throw new TypeError('use Clock.system() or Clock.manual(startMs)')
    this.#n = handle
  }

  /** The system clock. */
  static system () {
    return new Clock(native.NativeClock.system())
  }

  /** A manual clock at `startMs` (ms since the epoch; default 0). */
  static manual (startMs) {
    return new Clock(call(() => native.NativeClock.manual(startMs ?? 0)))
  }

  /** The current time, ms since the epoch. */
  now () {
    return this.#n.now()
  }

  /** Moves a manual clock forward by `ms`; InvalidArgument for the system clock. */
  advance (ms) {
    call(() => this.#n.advance(ms))
  }

  static handle (c) {
    return c.#n
  }
}

function leaseOut (l) {
  return {
    id: l.id,
    path: l.path,
    engine: l.engine,
    issuedAt: new Date(l.issuedMs),
    ttlMs: l.ttlMs,
    maxTtlMs: l.maxTtlMs,
    expiresAt: new Date(l.expiresMs),
    maxExpiresAt: new Date(l.maxExpiresMs),
    renewable: l.renewable,
    state: l.state
  }
}

function leaseEventOut (e) {
  const out = { kind: e.kind, id: e.id ?? null, path: e.path ?? null }
  if (e.expiresMs != null) out.expiresAt = new Date(e.expiresMs)
  if (e.capped != null) out.capped = e.capped
  if (e.forced != null) out.forced = e.forced
  if (e.attempts != null) out.attempts = e.attempts
  if (e.reason != null) out.reason = e.reason
  return out
}

// The events a LeaseManager emits: 'event' (every one) and one per kind.
const LEASE_EVENTS = new Set(['event', 'issued', 'renewed', 'expiring_soon', 'revoked', 'irrevocable', 'other'])

/**
 * Leases kept in a store, sealed under its keys (store.leaseManager(clock)). The built-in
 * engine "noop" revokes by doing nothing.
 *
 * An EventEmitter: listening to 'event' (every lease event) or to a kind
 * ('issued', 'renewed', 'expiring_soon', 'revoked', 'irrevocable') pushes
 * the events as they happen; `events()` is the same as an async iterator.
 * With start(), a background scheduler revokes expired leases as the clock
 * reaches them. Neither keeps the process alive.
 */
class LeaseManager extends EventEmitter {
  #n

  static handle (m) {
    return m.#n
  }
  // The native event forwarder's id while someone listens, else null.
  #watch = null

  /** @private use store.leaseManager() */
  constructor (handle) {
    if (!(handle instanceof native.NativeLeaseManager)) throw new TypeError('use store.leaseManager()')
    super()
    this.#n = handle
    this.on('newListener', (name) => {
      if (this.#watch === null && LEASE_EVENTS.has(name)) {
        this.#watch = call(() => this.#n.watchEvents((e) => this.#dispatch(e)))
      }
    })
    this.on('removeListener', (name) => {
      if (this.#watch !== null && LEASE_EVENTS.has(name) && !this.#listening()) {
        this.#n.unwatchEvents(this.#watch)
        this.#watch = null
      }
    })
  }

  #listening () {
    for (const name of LEASE_EVENTS) if (this.listenerCount(name) > 0) return true
    return false
  }

  #dispatch (e) {
    const ev = leaseEventOut(e)
    this.emit(ev.kind, ev)
    this.emit('event', ev)
  }

  /**
   * The lease events from now on as an async iterator (node:events.on over
   * 'event'); opts.signal ends it. Stops listening when the loop ends.
   */
  events (opts) {
    const it = eventsOn(this, 'event', opts)
    return {
      next: () => it.next().then((r) => (r.done ? r : { done: false, value: r.value[0] })),
      return: () => it.return(),
      throw: (e) => it.throw(e),
      [Symbol.asyncIterator] () { return this }
    }
  }

  /**
   * Starts the background scheduler: expired leases are revoked (and
   * expiring-soon events sent) when the manager's clock reaches them; a
   * manual clock wakes it when advanced. Returns false if it was running.
   * It stops on stop(), on the store's close(), or when this manager is
   * garbage-collected.
   */
  start () {
    return call(() => this.#n.start())
  }

  /** Stops the scheduler and waits for it; resolves to whether it was running. */
  stop () {
    return callAsync(() => this.#n.stop())
  }

  /** Whether the scheduler is running. */
  get isRunning () {
    return this.#n.isRunning
  }

  /**
   * Registers `engine`: revoking one of its leases calls `revoke(lease)`
   * (may be async); a throw or rejection defers the revocation and the
   * manager retries. The callback does not keep the process alive.
   */
  registerEngine (engine, revoke) {
    if (typeof revoke !== 'function') throw new TypeError('revoke must be a function')
    call(() => this.#n.registerEngine(engine, async (r) => {
      const lease = leaseOut(r.lease)
      lease.data = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength)
      await revoke(lease)
    }))
  }

  /**
   * Issues a lease: opts { engine = "noop", ttlMs, maxTtlMs = ttlMs,
   * renewable = true, data } (data: what the engine's revoker needs, stored
   * with the lease and passed to the revoker as `lease.data`).
   */
  issue (path, opts) {
    return callAsync(async () => {
      opts = opts || {}
      const ttl = opts.ttlMs
      const maxTtl = opts.maxTtlMs ?? ttl
      const data = opts.data === undefined ? undefined : plaintextArg(opts.data)
      return leaseOut(await this.#n.issue(path, opts.engine ?? 'noop', ttl, maxTtl, opts.renewable ?? true,
        typeof data === 'string' ? Buffer.from(data, 'utf8') : data))
    })
  }

  /** Renews a lease to expire `incrementMs` from now (capped by its max TTL); LeaseExpired once it expired. */
  renew (id, incrementMs) {
    return callAsync(async () => leaseOut(await this.#n.renew(id, incrementMs)))
  }

  /** Revokes a lease now. */
  revoke (id) {
    return callAsync(async () => leaseOut(await this.#n.revoke(id)))
  }

  /** Removes a lease whatever its engine says (tried once, failure ignored). */
  forceRevoke (id) {
    return callAsync(async () => leaseOut(await this.#n.forceRevoke(id)))
  }

  /** Revokes every lease under `prefix` ("" for all); resolves to { revoked, pending } ids. */
  revokePrefix (prefix) {
    return callAsync(() => this.#n.revokePrefix(prefix ?? ''))
  }

  /** The lease with this id; LeaseNotFound once revoked. */
  lookup (id) {
    return callAsync(async () => leaseOut(await this.#n.lookup(id)))
  }

  /** Ids of the live leases under `prefix` ("" for all). */
  list (prefix) {
    return callAsync(() => this.#n.list(prefix ?? ''))
  }

  /** Revokes what expired and sends expiring-soon events, at the clock's current time. */
  runDue () {
    return callAsync(() => this.#n.runDue())
  }

  /** The events since the last call, oldest first: { kind, id, path, expiresAt? }. */
  takeEvents () {
    return call(() => this.#n.takeEvents().map(leaseEventOut))
  }
}

/**
 * A lease manager over this store (lease records are sealed under its
 * keys), timed by `clock` (default: the store's clock); opts.maxLeases caps the live leases (LeaseQuotaExceeded).
 */
Strongroom.prototype.leaseManager = function leaseManager (clock, opts) {
  return call(() => {
    if (clock !== undefined && clock !== null && !(clock instanceof Clock)) throw new TypeError('clock must be a Clock')
    const maxLeases = opts && opts.maxLeases
    if (maxLeases !== undefined && typeof maxLeases !== 'number') throw new TypeError('maxLeases must be a number')
    return new LeaseManager(Strongroom.handle(this).leaseManager(clock ? Clock.handle(clock) : undefined, maxLeases))
  })
}

// ----- rotation -----

function credentialOut (c) {
  return c == null ? null : { version: c.version, identity: c.identity, secret: new Secret(c.secret) }
}

function rotationReport (r) {
  return { promoted: r.promoted ?? null, revoked: r.revoked ?? null }
}

function rotationStatusOut (s) {
  const date = (v) => (v == null ? null : new Date(v))
  return {
    pending: s.pending ?? null,
    current: s.current ?? null,
    previous: s.previous ?? null,
    revokePreviousAt: date(s.revokePreviousMs),
    lastPromotedAt: date(s.lastPromotedMs),
    inFlight: s.inFlightStep == null ? null : { step: s.inFlightStep, version: s.inFlightVersion },
    history: s.history.map((h) => ({
      version: h.version,
      identity: h.identity,
      createdAt: new Date(h.createdMs),
      promotedAt: date(h.promotedMs),
      supersededAt: date(h.supersededMs),
      revokedAt: date(h.revokedMs),
      failedAt: date(h.failedMs)
    }))
  }
}

function stagedOut (s) {
  return { pending: credentialOut(s.pending), current: credentialOut(s.current), previous: credentialOut(s.previous) }
}

/**
 * An API key rotated with overlap (store.apiKeyRotation()): versions move
 * pending -> current -> previous, and verify() accepts the current key and,
 * until the grace period ends and revokeDue() runs, the previous one.
 */
class ApiKeyRotation {
  #n

  /** @private use store.apiKeyRotation() */
  constructor (handle) {
    if (!(handle instanceof native.NativeApiKeyRotation)) throw new TypeError('use store.apiKeyRotation()')
    this.#n = handle
  }

  /** The credential name. */
  get name () {
    return this.#n.name
  }

  /** Makes a new key current (the current one becomes previous); resolves to { promoted, revoked }. */
  rotateNow () {
    return callAsync(async () => rotationReport(await this.#n.rotateNow()))
  }

  /** Finishes an interrupted rotation and revokes a previous key whose grace period is over. */
  resume () {
    return callAsync(async () => rotationReport(await this.#n.resume()))
  }

  /** Revokes the previous key if its grace period is over; resolves to whether it did. */
  revokeDue () {
    return callAsync(() => this.#n.revokeDue())
  }

  /** The non-secret state: versions by stage, what is in flight, history. */
  status () {
    return callAsync(async () => rotationStatusOut(await this.#n.status()))
  }

  /** The stored keys by stage: { pending, current, previous }, each null or { version, identity, secret: Secret }. */
  staged () {
    return callAsync(async () => {
      const s = await this.#n.staged()
      return { pending: credentialOut(s.pending), current: credentialOut(s.current), previous: credentialOut(s.previous) }
    })
  }

  /**
   * Adopts an existing key (one clients already use, possibly older than
   * this rotation's format; not empty) as the current version;
   * RotationAlreadyInitialized once there is a current version. Resolves to
   * its version number.
   */
  importCurrent (key) {
    return callAsync(() => this.#n.importCurrent(plaintextArg(key)))
  }

  /** Reloads the verifier from storage (after another process rotated). */
  sync () {
    return callAsync(async () => { await this.#n.sync() })
  }

  /** Checks a presented key in constant time: "current", "previous" or "no_match". */
  verify (presented) {
    return call(() => this.#n.verify(plaintextArg(presented)))
  }

  [util.inspect.custom] () {
    return `ApiKeyRotation { name: '${this.name}' }`
  }
}

/**
 * An API-key rotation of credential `name`. opts: { prefix = "", chars }
 * (base62 characters) or { prefix, hexBytes } (random bytes in hex),
 * gracePeriodMs (how long the previous key stays valid; default 1 hour),
 * maxAttempts (per step, default 5). Its verifier starts from the stored keys.
 */
Strongroom.prototype.apiKeyRotation = function apiKeyRotation (name, opts) {
  return callAsync(async () => {
    if (typeof name !== 'string') throw new TypeError('name must be a string')
    opts = opts || {}
    const prefix = opts.prefix ?? ''
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
    let encoding, length
    if (opts.chars !== undefined && opts.hexBytes === undefined) {
      encoding = 'base62'
      length = opts.chars
    } else if (opts.hexBytes !== undefined && opts.chars === undefined) {
      encoding = 'hex'
      length = opts.hexBytes
    } else {
      throw new TypeError('give exactly one of opts.chars (base62) or opts.hexBytes (hex)')
    }
    // The allowed lengths are strongroom-host's one set of rules (base62:
    // 16 to 1024 characters; hex: 12 to 1024 bytes): InvalidArgument.
    if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) {
      throw new TypeError('the key length must be a non-negative integer')
    }
    const grace = opts.gracePeriodMs ?? 3_600_000
    return new ApiKeyRotation(await Strongroom.handle(this).apiKeyRotation(name, prefix, encoding, length, grace,
      opts.maxAttempts))
  })
}

// ----- Shamir -----

function countArg (name, v) {
  if (!Number.isInteger(v) || v < 0) throw new TypeError(`${name} must be a non-negative integer`)
  return v
}

/**
 * Splits `secret` (Buffer, string or Secret) into `shares` share texts
 * (`srs1-...`), any `threshold` of which rebuild it with shamirCombine.
 * Each text is secret: hand it to its holder. A threshold below 2 or above
 * `shares`, or an empty secret, is a typed error.
 */
function shamirSplit (secret, threshold, shares) {
  return call(() => native.shamirSplit(plaintextArg(secret), countArg('threshold', threshold), countArg('shares', shares)))
}

/**
 * Rebuilds a secret from at least `threshold` share texts: a Secret. Too
 * few shares, shares of different splits or a mistyped share are typed
 * errors (ShamirError's classes).
 */
function shamirCombine (shares) {
  return new Secret(call(() => native.shamirCombine(stringsArg('shares', shares))))
}

/**
 * A root-key protector whose key-encryption key exists only as Shamir
 * shares: give it as { shamir } to Strongroom.open/init/unseal or
 * store.rotateRootKey.
 */
class ShamirProtector {
  #n

  /** @private use ShamirProtector.generate() or ShamirProtector.fromShares() */
  constructor (handle) {
    if (!(handle instanceof native.NativeShamirProtector)) {
      throw new TypeError('use ShamirProtector.generate() or ShamirProtector.fromShares()')
    }
    this.#n = handle
  }

  /**
   * A new random key-encryption key split into `shares` share texts, any
   * `threshold` of which rebuild it: { protector, shares }.
   */
  static generate (threshold, shares) {
    const setup = call(() => native.generateShamirProtector(countArg('threshold', threshold), countArg('shares', shares)))
    return { protector: new ShamirProtector(setup.takeProtector()), shares: setup.takeShares() }
  }

  /** The protector rebuilt from at least `threshold` share texts. */
  static fromShares (shares) {
    return new ShamirProtector(call(() => native.NativeShamirProtector.fromShares(stringsArg('shares', shares))))
  }

  /** How many shares rebuild the key. */
  get threshold () {
    return this.#n.threshold
  }

  /** The split id (hex, not secret) the shares carry. */
  get splitId () {
    return this.#n.splitId
  }

  /** @private */
  static handle (p) {
    return p.#n
  }

  [util.inspect.custom] () {
    return `ShamirProtector { threshold: ${this.threshold}, splitId: '${this.splitId}' }`
  }
}

// ----- PostgreSQL -----

function pgLoginOut (l) {
  return l == null ? null : { version: l.version, username: l.username, password: new Secret(l.password) }
}

/**
 * The logins a connection pool uses (pgRotation.credentialFeed(),
 * dynamicPg.feed()): login() gives the current stored version; after the
 * server refused a login (SQLSTATE 28P01) afterError() records that version
 * as refused, once however many connections report it, and gives the next
 * one to try. `strongroom/pg`'s createPool uses it.
 */
class CredentialFeed {
  #n

  /** @private use pgRotation.credentialFeed() or dynamicPg.feed() */
  constructor (handle) {
    if (!(handle instanceof native.NativeCredentialFeed)) throw new TypeError('use pgRotation.credentialFeed() or dynamicPg.feed()')
    this.#n = handle
  }

  /** The login for a new connection: { version, username, password: Secret }, or null while nothing is stored. */
  login () {
    return callAsync(async () => pgLoginOut(await this.#n.login()))
  }

  /**
   * Reports the server's answer (SQLSTATE `code`, `message`) to a
   * connection that logged in with `version`. Resolves to { action, login }:
   * "retry" (connect again with `login`), "no_other_credential" (every
   * stored version was refused: raise the error) or
   * "not_a_credential_error" (raise it; the feed did nothing).
   */
  afterError (version, code, message) {
    return callAsync(async () => {
      if (typeof code !== 'string' || typeof message !== 'string') throw new TypeError('code and message must be strings')
      const r = await this.#n.afterError(version, code, message)
      return { action: r.action, login: pgLoginOut(r.login) }
    })
  }

  /** How many refreshes refusals caused (one per refused version). */
  get refreshes () {
    return this.#n.refreshes
  }

  [util.inspect.custom] () {
    return `CredentialFeed { refreshes: ${this.refreshes} }`
  }
}

/**
 * A rotated PostgreSQL password (PgRotation.open): "alternating" keeps two
 * login roles <role>_a / <role>_b and gives the one not in use the new
 * password, so logins never fail; "single" runs ALTER ROLE on one role.
 */
class PgRotation {
  #n

  /** @private use PgRotation.open() */
  constructor (handle) {
    if (!(handle instanceof native.NativePgRotation)) throw new TypeError('use PgRotation.open()')
    this.#n = handle
  }

  /**
   * The rotation of credential `name` in `store` for `role` on the server
   * and database of `adminUrl` (a role with CREATEROLE, which administers
   * it). opts: { mode: "alternating" (default; the roles are created if
   * missing) | "single" (an existing role), gracePeriodMs (how long the
   * previous password keeps working; default 1 hour), maxAttempts }. Does
   * not rotate. The URL never appears in errors.
   */
  static open (store, name, adminUrl, role, opts) {
    return callAsync(async () => {
      if (!(store instanceof Strongroom)) throw new TypeError('store must be a Strongroom')
      for (const [n, v] of [['name', name], ['adminUrl', adminUrl], ['role', role]]) {
        if (typeof v !== 'string') throw new TypeError(`${n} must be a string`)
      }
      opts = objectArg('opts', opts ?? {})
      const mode = opts.mode ?? 'alternating'
      if (typeof mode !== 'string') throw new TypeError('mode must be "alternating" or "single"')
      optionalArg('gracePeriodMs', opts.gracePeriodMs, 'number')
      return new PgRotation(await Strongroom.handle(store).pgRotation(name, adminUrl, role, mode,
        opts.gracePeriodMs ?? 3_600_000, opts.maxAttempts))
    })
  }

  /** The credential name. */
  get name () {
    return this.#n.name
  }

  /** Sets a new password and makes it current; resolves to { promoted, revoked }. */
  rotateNow () {
    return callAsync(async () => rotationReport(await this.#n.rotateNow()))
  }

  /** Finishes an interrupted rotation; revokes the previous password if its grace period is over. */
  resume () {
    return callAsync(async () => rotationReport(await this.#n.resume()))
  }

  /** Revokes the previous password if its grace period is over (on the store's clock); whether it did. */
  revokeDue () {
    return callAsync(() => this.#n.revokeDue())
  }

  /** The non-secret state, as ApiKeyRotation.status(). */
  status () {
    return callAsync(async () => rotationStatusOut(await this.#n.status()))
  }

  /** The stored logins by stage: { pending, current, previous }, each null or { version, identity (the role), secret }. */
  staged () {
    return callAsync(async () => stagedOut(await this.#n.staged()))
  }

  /** A feed of this credential's logins for a connection pool. */
  credentialFeed () {
    return new CredentialFeed(call(() => this.#n.credentialFeed()))
  }

  /** Closes the administrative connections. */
  close () {
    return callAsync(() => this.#n.close())
  }

  [util.inspect.custom] () {
    return `PgRotation { name: '${this.name}' }`
  }
}

/**
 * Stores `toml` as `store`'s role catalog for dynamic PostgreSQL
 * credentials (the format of `strongroom creds configure`) in place of
 * revision `expectedRevision` (left out: none may exist yet); resolves to
 * the new revision. A catalog that does not parse, or a stale revision, is
 * InvalidArgument.
 */
function configurePgCatalog (store, toml, expectedRevision) {
  return callAsync(async () => {
    if (!(store instanceof Strongroom)) throw new TypeError('store must be a Strongroom')
    if (typeof toml !== 'string') throw new TypeError('toml must be a string')
    optionalArg('expectedRevision', expectedRevision, 'number')
    return Strongroom.handle(store).configurePgCatalog(toml, expectedRevision ?? undefined)
  })
}

/**
 * Dynamic PostgreSQL credentials from the store's role catalog, issued as
 * leases of a LeaseManager, which revokes them (the role is dropped).
 */
class DynamicPg {
  #n

  /** @private use DynamicPg.open() */
  constructor (handle) {
    if (!(handle instanceof native.NativeDynamicPg)) throw new TypeError('use DynamicPg.open()')
    this.#n = handle
  }

  /**
   * Loads `store`'s catalog, reads its connection secret, connects, and
   * registers the revoker with `leases` (a LeaseManager of the same store).
   * InvalidArgument if no catalog is stored.
   */
  static open (store, leases) {
    return callAsync(async () => {
      if (!(store instanceof Strongroom)) throw new TypeError('store must be a Strongroom')
      if (!(leases instanceof LeaseManager)) throw new TypeError('leases must be a LeaseManager')
      return new DynamicPg(await Strongroom.handle(store).dynamicPg(LeaseManager.handle(leases)))
    })
  }

  /** The catalog's role names. */
  roles () {
    return call(() => this.#n.roles())
  }

  /**
   * Issues a credential of `role` for `ttlMs` (left out: the role's
   * default): { lease, username, password: Secret }. An unknown role or a
   * TTL above the role's maximum is InvalidArgument.
   */
  issue (role, ttlMs) {
    return callAsync(async () => {
      if (typeof role !== 'string') throw new TypeError('role must be a string')
      optionalArg('ttlMs', ttlMs, 'number')
      const l = await this.#n.issue(role, ttlMs ?? undefined)
      return { lease: leaseOut(l.lease), username: l.username, password: new Secret(l.password) }
    })
  }

  /**
   * A feed for a connection pool: a credential of `role` now, and a new
   * one once opts.refreshFraction (default 0.5, clamped to 0.05..0.95) of each
   * lease's opts.ttlMs (default: the role's) has passed on the store's
   * clock; the previous one is kept until its own lease ends.
   */
  feed (role, opts) {
    return callAsync(async () => {
      if (typeof role !== 'string') throw new TypeError('role must be a string')
      opts = objectArg('opts', opts ?? {})
      optionalArg('ttlMs', opts.ttlMs, 'number')
      optionalArg('refreshFraction', opts.refreshFraction, 'number')
      return new CredentialFeed(await this.#n.feed(role, opts.ttlMs ?? undefined, opts.refreshFraction ?? undefined))
    })
  }

  [util.inspect.custom] () {
    return `DynamicPg { roles: ${JSON.stringify(this.roles())} }`
  }
}

// ----- signing keys -----

/**
 * A signature and the key version that made it. Its text form
 * (`toString()`, `text`, JSON) is `strongroom:v<version>:<base64>`;
 * `Signature.parse(text)` reads it back.
 */
class Signature {
  #version
  #bytes
  #text

  /** @private use SigningKeys.sign() or Signature.parse() */
  constructor (native) {
    this.#version = native.version
    this.#bytes = native.bytes
    this.#text = native.text
  }

  /** Parses `strongroom:v<version>:<base64>` strictly; SigningBadSignatureEncoding otherwise. */
  static parse (text) {
    if (typeof text !== 'string') throw new TypeError('a signature text must be a string')
    return new Signature(call(() => native.parseSignature(text)))
  }

  /** The key version that made it. */
  get version () { return this.#version }

  /** The signature bytes (a copy). */
  get bytes () { return Buffer.from(this.#bytes) }

  /** The text form `strongroom:v<version>:<base64>`. */
  get text () { return this.#text }

  toString () { return this.#text }
  toJSON () { return this.#text }
  [util.inspect.custom] () { return `Signature { ${this.#text} }` }
}

function signatureArg (sig) {
  if (sig instanceof Signature) return sig.text
  if (typeof sig === 'string') return sig
  throw new TypeError('signature must be a Signature or its text form')
}

function signingKeyInfo (k) {
  return {
    name: k.name,
    keyType: k.keyType,
    latestVersion: k.latestVersion,
    minVerifyVersion: k.minVerifyVersion,
    versions: k.versions.map((v) => ({ version: v.version, createdAt: new Date(v.createdMs) })),
    rateLimit: k.rateLimit == null ? null : { perSecond: k.rateLimit.perSecond, burst: k.rateLimit.burst }
  }
}

function publicKeyOut (p) {
  return {
    keyType: p.keyType,
    version: p.version,
    raw: p.raw,
    spkiDer: p.spkiDer,
    spkiPem: p.spkiPem,
    ethAddress: p.ethAddress ?? null
  }
}

function ethSignatureOut (e) {
  return { version: e.version, r: e.r, s: e.s, v: e.v, recoveryId: e.recoveryId, bytes: e.bytes, hex: e.hex }
}

function rateLimitArg (limit) {
  if (limit == null) return [undefined, undefined]
  if (typeof limit !== 'object' || !Number.isInteger(limit.perSecond) || !Number.isInteger(limit.burst)) {
    throw new TypeError('a rate limit is { perSecond: integer, burst: integer }')
  }
  return [limit.perSecond, limit.burst]
}

function versionOpt (opts) {
  return opts && opts.version !== undefined ? opts.version : undefined
}

/**
 * Signing keys that never leave the store (Ed25519, ECDSA P-256,
 * secp256k1): the store's own (`store.signingKeys()`, no policy checks or
 * audit) or a principal's view of them (`principal.signing(keys)`, every
 * call checked against its policies on the key's name and audited). Only
 * signatures and public keys come out.
 */
class SigningKeys {
  #n

  /** @private use store.signingKeys() or principal.signing(keys) */
  constructor (handle) {
    if (!(handle instanceof native.NativeSigningKeys)) {
      throw new TypeError('use store.signingKeys() or principal.signing(keys)')
    }
    this.#n = handle
  }

  /** The principal's name, or null for the store's own signing keys. */
  get principal () {
    return this.#n.principal ?? null
  }

  /**
   * Creates key `name` of `keyType` ("ed25519", "ecdsa_p256" or
   * "secp256k1"); opts.rateLimit: { perSecond, burst }. Resolves to its info.
   */
  createKey (name, keyType, opts) {
    return callAsync(async () => {
      const [perSecond, burst] = rateLimitArg(opts && opts.rateLimit)
      return signingKeyInfo(await this.#n.createKey(name, keyType, perSecond, burst))
    })
  }

  /** Adds a version, which signs from now on. */
  rotateKey (name) {
    return callAsync(async () => signingKeyInfo(await this.#n.rotateKey(name)))
  }

  /** Raises the minimum verify version: older versions' signatures then fail with SigningVersionRetired. */
  setMinVerifyVersion (name, version) {
    return callAsync(async () => signingKeyInfo(await this.#n.setMinVerifyVersion(name, version)))
  }

  /** Sets the key's rate limit ({ perSecond, burst }), or removes it (null). */
  setRateLimit (name, limit) {
    return callAsync(async () => {
      const [perSecond, burst] = rateLimitArg(limit)
      return signingKeyInfo(await this.#n.setRateLimit(name, perSecond, burst))
    })
  }

  /** What is known about the key (no key material). */
  keyInfo (name) {
    return callAsync(async () => signingKeyInfo(await this.#n.keyInfo(name)))
  }

  /** The public key of opts.version (the newest if none). */
  publicKey (name, opts) {
    return callAsync(async () => publicKeyOut(await this.#n.publicKey(name, versionOpt(opts))))
  }

  /** The EIP-55 Ethereum address of a secp256k1 key (opts.version, else the newest). */
  ethAddress (name, opts) {
    return callAsync(() => this.#n.ethAddress(name, versionOpt(opts)))
  }

  /** Signs `message` (Buffer, Uint8Array or UTF-8 string) with the newest version; resolves to a Signature. */
  sign (name, message) {
    return callAsync(async () => new Signature(await this.#n.sign(name, messageArg(message))))
  }

  /**
   * Whether `signature` (a Signature or its text) is `name`'s signature of
   * `message`. Rejects with SigningVersionRetired for a retired version.
   */
  verify (name, message, signature) {
    return callAsync(() => this.#n.verify(name, messageArg(message), signatureArg(signature)))
  }

  /** Signs an EIP-191 personal message with a secp256k1 key: { version, r, s, v, recoveryId, bytes, hex }. */
  ethSignPersonalMessage (name, message) {
    return callAsync(async () => ethSignatureOut(await this.#n.ethSignPersonalMessage(name, messageArg(message))))
  }

  /** Signs a 32-byte EIP-155 transaction hash for `chainId` (number or bigint) with a secp256k1 key. */
  ethSignTransactionHash (name, hash, chainId) {
    return callAsync(async () => ethSignatureOut(
      await this.#n.ethSignTransactionHash(name, bytesArg('hash', hash), chainId)))
  }

  [util.inspect.custom] () {
    return `SigningKeys { principal: ${this.principal} }`
  }

  static handle (k) {
    return k.#n
  }
}

function messageArg (m) {
  if (Buffer.isBuffer(m) || typeof m === 'string') return m
  if (m instanceof Uint8Array) return Buffer.from(m.buffer, m.byteOffset, m.byteLength)
  throw new TypeError('message must be a Buffer, Uint8Array or string')
}

/**
 * The store's signing keys, made from the store as it is now (no policy
 * checks, no audit). Rate limits are enforced per SigningKeys object: keep
 * one per process.
 */
Strongroom.prototype.signingKeys = function signingKeys () {
  return call(() => new SigningKeys(Strongroom.handle(this).signingKeys()))
}

/** `keys` as this principal (a SecretsStore from store.asPrincipal()): checked and audited. */
SecretsStore.prototype.signing = function signing (keys) {
  return call(() => {
    if (!(keys instanceof SigningKeys)) throw new TypeError('keys must be the SigningKeys of store.signingKeys()')
    return new SigningKeys(SecretsStore.handle(this).signing(SigningKeys.handle(keys)))
  })
}

// ----- internal CA -----

/** DER bytes as PEM with `label` (e.g. "CERTIFICATE"). */
function pemOf (label, der) {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

function caOut (c) {
  return {
    mount: c.mount,
    kind: c.kind,
    keyType: c.keyType,
    commonName: c.commonName,
    certificate: c.certificate,
    certificatePem: pemOf('CERTIFICATE', c.certificate),
    parents: c.parents,
    chainPem: [c.certificate, ...c.parents].map((d) => pemOf('CERTIFICATE', d)).join(''),
    notBefore: new Date(c.notBeforeMs),
    notAfter: new Date(c.notAfterMs)
  }
}

function crlOut (c) {
  return {
    der: c.der,
    pem: pemOf('X509 CRL', c.der),
    number: c.number,
    thisUpdate: new Date(c.thisUpdateMs),
    nextUpdate: new Date(c.nextUpdateMs),
    serials: c.serials
  }
}

/**
 * A certificate just issued. Its private key (PKCS#8 DER) is a Buffer
 * reachable only through `privateKey`; it is left out of util.inspect(),
 * toJSON() and the object's keys. `wipe()` zeroes it.
 */
class IssuedCertificate {
  #key
  #wiped = false

  /** @private use pki.issue() */
  constructor (n) {
    this.serial = n.serial
    this.leaseId = n.leaseId
    this.keyType = n.keyType
    this.certificate = n.certificate
    this.caChain = n.caChain
    this.notBefore = new Date(n.notBeforeMs)
    this.notAfter = new Date(n.notAfterMs)
    this.#key = n.privateKey
  }

  /** The certificate as PEM. */
  get certificatePem () {
    return pemOf('CERTIFICATE', this.certificate)
  }

  /** The certificate followed by the CA chain, as PEM. */
  get chainPem () {
    return [this.certificate, ...this.caChain].map((d) => pemOf('CERTIFICATE', d)).join('')
  }

  /** The private key, PKCS#8 DER (this Buffer itself, not a copy: wipe() zeroes it). */
  get privateKey () {
    if (this.#wiped) throw new errorClasses.SecretWiped('the private key was wiped')
    return this.#key
  }

  /** Zeroes the private key; later reads of `privateKey` throw SecretWiped. */
  wipe () {
    this.#key.fill(0)
    this.#wiped = true
  }

  toJSON () {
    return {
      serial: this.serial,
      leaseId: this.leaseId,
      keyType: this.keyType,
      certificatePem: this.certificatePem,
      notBefore: this.notBefore,
      notAfter: this.notAfter,
      privateKey: REDACTED
    }
  }

  [util.inspect.custom] () {
    return `IssuedCertificate { serial: '${this.serial}', keyType: '${this.keyType}', ` +
      `notAfter: ${this.notAfter.toISOString()}, privateKey: ${REDACTED} }`
  }
}

function principalArg (p) {
  if (!(p instanceof SecretsStore)) throw new TypeError('principal must be a SecretsStore from store.asPrincipal()')
  return SecretsStore.handle(p)
}

function objectArg (name, o) {
  if (o === null || typeof o !== 'object') throw new TypeError(`${name} must be an object`)
  return o
}

/**
 * A mount of the internal certificate authority (store.pki(leases, mount)).
 * Every call acts for a principal (a SecretsStore from store.asPrincipal()),
 * checked against its policies on `pki/<mount>/...` and audited.
 */
class Pki {
  #n

  /** @private use store.pki() */
  constructor (handle) {
    if (!(handle instanceof native.NativePki)) throw new TypeError('use store.pki(leases, mount)')
    this.#n = handle
  }

  /** The mount's name. */
  get mount () {
    return this.#n.mount
  }

  /** The lease engine of the mount's certificates, `pki-<mount>`. */
  get engine () {
    return this.#n.engine
  }

  /** Creates the root CA: spec { commonName, keyType = "ed25519" | "ecdsa-p256", ttlMs }. */
  createRoot (principal, spec) {
    return callAsync(async () => {
      const p = principalArg(principal)
      spec = objectArg('spec', spec)
      return caOut(await this.#n.createRoot(p, {
        commonName: spec.commonName, keyType: spec.keyType, ttlMs: spec.ttlMs
      }))
    })
  }

  /** The mount's CA certificate (no private key ever leaves). */
  ca (principal) {
    return callAsync(async () => caOut(await this.#n.ca(principalArg(principal))))
  }

  /**
   * Creates or replaces role `name`: { allowedNames, allowLocalhost,
   * allowIpSans, allowWildcardCertificates, keyTypes, usages, ttlMs, maxTtlMs }.
   */
  putRole (principal, name, role) {
    return callAsync(async () => {
      const p = principalArg(principal)
      role = objectArg('role', role)
      await this.#n.putRole(p, name, {
        allowedNames: role.allowedNames,
        allowLocalhost: role.allowLocalhost,
        allowIpSans: role.allowIpSans,
        allowWildcardCertificates: role.allowWildcardCertificates,
        keyTypes: role.keyTypes,
        usages: role.usages,
        ttlMs: role.ttlMs,
        maxTtlMs: role.maxTtlMs
      })
    })
  }

  /**
   * Issues a certificate under `role`: request { dnsNames, ipAddresses,
   * commonName, keyType, usages, ttlMs }. Resolves to an IssuedCertificate.
   */
  issue (principal, role, request) {
    return callAsync(async () => {
      const p = principalArg(principal)
      request = objectArg('request', request)
      return new IssuedCertificate(await this.#n.issue(p, role, {
        dnsNames: request.dnsNames,
        ipAddresses: request.ipAddresses,
        commonName: request.commonName,
        keyType: request.keyType,
        usages: request.usages,
        ttlMs: request.ttlMs
      }))
    })
  }

  /** Revokes the certificate with `serial` (hex) by revoking its lease; resolves to the lease id. */
  revoke (principal, serial) {
    return callAsync(() => this.#n.revoke(principalArg(principal), serial))
  }

  /** The current CRL ({ der, pem, number, thisUpdate, nextUpdate, serials }), signing a new one when due. */
  crl (principal) {
    return callAsync(async () => crlOut(await this.#n.crl(principalArg(principal))))
  }

  [util.inspect.custom] () {
    return `Pki { mount: '${this.mount}' }`
  }
}

/**
 * The CA mount `mount` of this store; its certificates are leases of
 * `leases` (a LeaseManager of this store, which gets the mount's revoker).
 */
Strongroom.prototype.pki = function pki (leases, mount) {
  return call(() => {
    if (!(leases instanceof LeaseManager)) throw new TypeError('leases must be a LeaseManager of this store')
    return new Pki(Strongroom.handle(this).pki(LeaseManager.handle(leases), mount))
  })
}

// ----- approvals -----

function decisionOut (d) {
  return { principal: d.principal, atMs: d.atMs }
}

function approvalRequestOut (r) {
  return {
    id: r.id,
    operation: r.operation,
    path: r.path,
    requester: r.requester,
    reason: r.reason,
    state: r.state,
    approvals: r.approvals.map(decisionOut),
    refusals: r.refusals.map(decisionOut),
    createdMs: r.createdMs,
    expiresMs: r.expiresMs,
    usedBy: r.usedBy ?? null
  }
}

function approvalGatesOut (g) {
  return {
    revision: g.revision,
    gates: g.gates.map((x) => ({
      operation: x.operation,
      pattern: x.pattern ?? null,
      required: x.required,
      approvers: x.approvers
    })),
    toml: g.toml
  }
}

/**
 * A principal's approval requests (principal.approvals()): ask for a gated
 * operation, approve or refuse others' requests, read requests and the
 * gates. Every change is audited under the principal.
 */
class Approvals {
  #n

  /** @private use principal.approvals() */
  constructor (handle) {
    if (!(handle instanceof native.NativeApprovals)) throw new TypeError('use principal.approvals()')
    this.#n = handle
  }

  /** The principal acting. */
  get principal () {
    return this.#n.principal
  }

  /**
   * Asks for `operation` ("destroy", "sensitive_read", "root_key_rotate",
   * "key_destroy", "apply_config") on `path` ("" for the store-wide
   * operations) to run once within `ttlMs`, for `reason`. ApprovalNoGate if
   * no gate holds it; ApprovalInvalidRequest for a bad operation, reason or TTL.
   */
  request (operation, path, reason, ttlMs) {
    return callAsync(async () => {
      if (typeof ttlMs !== 'number') throw new TypeError('ttlMs must be a number of milliseconds')
      return approvalRequestOut(await this.#n.request(operation, path, reason, ttlMs))
    })
  }

  /** Approves request `id` as this principal; resolves to the request as it now stands. */
  approve (id) {
    return callAsync(async () => approvalRequestOut(await this.#n.approve(id)))
  }

  /** Refuses request `id` as this principal: it can never run. */
  refuse (id) {
    return callAsync(async () => approvalRequestOut(await this.#n.refuse(id)))
  }

  /** Request `id`; ApprovalNotFound if there is none. */
  get (id) {
    return callAsync(async () => approvalRequestOut(await this.#n.get(id)))
  }

  /** Every stored request, oldest first. */
  list () {
    return callAsync(async () => (await this.#n.list()).map(approvalRequestOut))
  }

  /** The store's gates: { revision, gates, toml } (revision 0 and no gates if never set). */
  gates () {
    return callAsync(async () => approvalGatesOut(await this.#n.gates()))
  }

  [util.inspect.custom] () {
    return `Approvals { principal: ${this.principal} }`
  }
}

/** This principal's approval requests; InvalidArgument on store.secrets(). */
SecretsStore.prototype.approvals = function approvals () {
  return call(() => new Approvals(SecretsStore.handle(this).approvals()))
}

/**
 * This principal's handle with approval request `id`: its next gated call
 * (destroy, a read of a sensitive path) uses the approved request up.
 */
SecretsStore.prototype.withApproval = function withApproval (id) {
  return call(() => {
    if (typeof id !== 'string') throw new TypeError('the approval request id must be a string')
    return new SecretsStore(SecretsStore.handle(this).withApproval(id))
  })
}

/**
 * Replaces the store's approval gates with those of the gates file `toml`
 * if their revision is still `expectedRevision` (0 if never set);
 * ApprovalConflict otherwise. Audited under opts.operator (a principal's
 * SecretsStore of this store) or the binding's own dangerous:node handle.
 * Resolves to the new revision.
 */
Strongroom.prototype.setGates = function setGates (toml, expectedRevision, opts) {
  return callAsync(async () => {
    if (typeof toml !== 'string') throw new TypeError('the gates must be a TOML string')
    const operator = opts && opts.operator != null ? opts.operator : undefined
    if (operator !== undefined && !(operator instanceof SecretsStore)) {
      throw new TypeError('operator must be a SecretsStore from store.asPrincipal()')
    }
    return Strongroom.handle(this).setGates(toml, expectedRevision, operator && SecretsStore.handle(operator))
  })
}

// ----- alerts -----

function alertOut (a) {
  return {
    kind: a.kind,
    severity: a.severity,
    principal: a.principal,
    path: a.path ?? null,
    requestId: a.requestId,
    seq: a.seq,
    summary: a.summary,
    atMs: a.atMs
  }
}

/**
 * Live alerting on the audit stream: the rules of `config` (TOML, as the
 * core's AlertConfig) run on every record of the audit logs the engine is
 * attached to (store.openAuditLog({ ..., alerts: engine })); each alert is
 * passed to `callback(alert)` later, on the event loop, never during the
 * audited call. A callback that throws (or returns a Promise that rejects)
 * is counted in stats().callbackErrors and reported with
 * process.emitWarning; later alerts still come.
 */
class AlertEngine {
  #n

  constructor (config, callback) {
    if (typeof config !== 'string') throw new TypeError('the alert config must be a TOML string')
    if (typeof callback !== 'function') throw new TypeError('the alert callback must be a function taking an alert')
    this.#n = call(() => new native.NativeAlertEngine(config, async (a) => {
      try {
        await callback(alertOut(a))
      } catch (e) {
        process.emitWarning(`the alert callback failed: ${e instanceof Error ? e.message : String(e)}`,
          'StrongroomAlertWarning')
        throw e
      }
    }))
  }

  /** Counters: { raised, delivered, dropped, sinkTimeouts, callbackErrors }. */
  stats () {
    const s = this.#n.stats()
    return {
      raised: s.raised,
      delivered: s.delivered,
      dropped: s.dropped,
      sinkTimeouts: s.sinkTimeouts,
      callbackErrors: s.callbackErrors
    }
  }

  /** Resolves once every alert raised so far was handed to the callback (and it returned), dropped or timed out. */
  settled () {
    return callAsync(() => this.#n.settled())
  }

  [util.inspect.custom] () {
    const s = this.stats()
    return `AlertEngine { raised: ${s.raised}, delivered: ${s.delivered}, dropped: ${s.dropped} }`
  }

  static handle (e) {
    return e.#n
  }
}

// ----- low level -----

/** Seals with a raw 32-byte key (for test vectors and interop); random nonce. */
function sealWithKey (key, algorithm, keyVersion, path, version, plaintext) {
  return call(() => native.sealWithKey(bytesArg('key', key), algorithm, keyVersion, path, version,
    plaintextArg(plaintext)))
}

/** Opens a sealed value with a raw 32-byte key; returns a Secret. */
function openSealed (key, algorithm, path, version, sealed) {
  return call(() => openCopy(sealed,
    (buf) => native.openSealed(bytesArg('key', key), algorithm, path, version, buf)))
}

/** The keyring key version named in a sealed value's header. */
function sealedKeyVersion (sealed) {
  return call(() => native.sealedKeyVersion(bytesArg('sealed', sealed)))
}

/** Creates a key file (mode 0600) holding a fresh random root key. */
function generateKeyFile (path) {
  return callAsync(() => native.generateKeyFile(path))
}

module.exports = {
  Strongroom,
  Storage,
  Secret,
  SecretsStore,
  Policy,
  AuditLog,
  verifyAuditFile,
  Clock,
  LeaseManager,
  ApiKeyRotation,
  ShamirProtector,
  shamirSplit,
  shamirCombine,
  CredentialFeed,
  PgRotation,
  DynamicPg,
  configurePgCatalog,
  Signature,
  SigningKeys,
  Pki,
  IssuedCertificate,
  Approvals,
  AlertEngine,
  sealWithKey,
  sealedKeyVersion,
  openSealed,
  generateKeyFile,
  ERROR_CODES,
  ERROR_CLASSES,
  ...errorClasses
}
