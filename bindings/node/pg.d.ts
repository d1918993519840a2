// Types of strongroom/pg: a node-postgres pool whose logins come from a
// Strongroom CredentialFeed. The pool is a pg.Pool; the declarations below
// are the part of its API this module adds to or relies on, so they do not
// need @types/pg.
import type { CredentialFeed } from './index'

/** pg.Pool's options (host, port, database, max, ssl, ...) plus the feed's. */
export interface StrongroomPoolConfig {
  host?: string
  port?: number
  database?: string
  max?: number
  idleTimeoutMillis?: number
  connectionTimeoutMillis?: number
  /** Close a connection after this many uses (new connections log in with the current credential). */
  maxUses?: number
  ssl?: unknown
  /** How often one connection may log in again after a refused login (default 3). */
  maxLoginRetries?: number
  /** The node-postgres module (default: require('pg')). */
  pg?: unknown
  [option: string]: unknown
}

/** What a query resolves to (node-postgres's QueryResult). */
export interface StrongroomQueryResult<R = Record<string, unknown>> {
  rows: R[]
  rowCount: number | null
  command: string
}

/** A checked-out connection (node-postgres's PoolClient). */
export interface StrongroomPoolClient {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<StrongroomQueryResult<R>>
  release(err?: Error | boolean): void
}

/** A pg.Pool logging in with a CredentialFeed. */
export interface StrongroomPool {
  /** The feed the pool logs in with. */
  readonly feed: CredentialFeed
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<StrongroomQueryResult<R>>
  connect(): Promise<StrongroomPoolClient>
  end(): Promise<void>
  on(event: 'error', listener: (err: Error) => void): this
  readonly totalCount: number
  readonly idleCount: number
  readonly waitingCount: number
}

/**
 * A pg.Pool whose connections log in with `feed`'s current login; a login
 * refused with SQLSTATE 28P01 is reported to the feed (once for all the
 * connections refused with that version) and the connection is made again
 * with the next stored login.
 */
export declare function createPool(feed: CredentialFeed, config?: StrongroomPoolConfig): StrongroomPool
