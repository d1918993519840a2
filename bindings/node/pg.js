'use strict'
// strongroom/pg: a node-postgres (`pg`) pool whose logins come from a
// Strongroom CredentialFeed (a rotated password or dynamic credentials).
// `pg` is the application's own dependency (npm install pg); this module
// only requires it when loaded.

const { CredentialFeed } = require('./index.js')

// The SQLSTATE of a refused login (wrong password, dropped role, expired
// VALID UNTIL all look the same to the client).
const REFUSED = '28P01'

function loadPg (pg) {
  if (pg !== undefined) return pg
  try {
    return require('pg')
  } catch (e) {
    throw new Error('strongroom/pg needs the `pg` package: npm install pg', { cause: e })
  }
}

// A pg.Client subclass that logs in with the feed's current login: each new
// connection asks the feed, so a rotated password or a renewed dynamic role
// is used as soon as it is stored.
function feedClient (pg, feed) {
  return class StrongroomClient extends pg.Client {
    connect (callback) {
      const p = this.#logIn()
      if (typeof callback === 'function') {
        p.then(() => callback(null), (err) => callback(err))
        return undefined
      }
      return p
    }

    async #logIn () {
      const login = await feed.login()
      if (login === null) {
        throw Object.assign(new Error('the credential has no stored version yet: rotate or issue one first'),
          { code: 'strongroom.no_credential' })
      }
      // node-postgres reads the login from these when it authenticates. The
      // password has to become a JavaScript string for it; the Secret's
      // bytes are wiped here.
      this.user = this.connectionParameters.user = login.username
      this.password = this.connectionParameters.password = login.password.reveal().toString('utf8')
      login.password.wipe()
      this.strongroomLoginVersion = login.version
      try {
        await super.connect()
      } catch (e) {
        if (e && typeof e === 'object') e.strongroomLoginVersion = login.version
        throw e
      }
      return this
    }
  }
}

function poolClass (pg) {
  return class StrongroomPool extends pg.Pool {
    #feed
    #maxRetries
    // afterError calls in flight, by refused version: concurrent waiters
    // refused with the same version share one.
    #refusals = new Map()

    constructor (feed, config) {
      const { maxLoginRetries, pg: _pg, ...rest } = config
      super({ ...rest, Client: feedClient(pg, feed) })
      this.#feed = feed
      this.#maxRetries = maxLoginRetries ?? 3
    }

    /** The feed the pool logs in with. */
    get feed () {
      return this.#feed
    }

    // pool.query() and pool.connect() both come through here.
    connect (callback) {
      const p = this.#connectRetrying()
      if (typeof callback === 'function') {
        p.then((client) => callback(undefined, client, client.release), (err) => callback(err))
        return undefined
      }
      return p
    }

    async #connectRetrying () {
      for (let attempt = 0; ; attempt++) {
        try {
          return await super.connect()
        } catch (e) {
          const version = e && e.strongroomLoginVersion
          if (attempt >= this.#maxRetries || version === undefined || e.code !== REFUSED) throw e
          const r = await this.#afterError(version, e.code, String(e.message))
          if (r.action !== 'retry') throw e
        }
      }
    }

    #afterError (version, code, message) {
      let p = this.#refusals.get(version)
      if (p === undefined) {
        p = this.#feed.afterError(version, code, message)
        this.#refusals.set(version, p)
        const forget = () => this.#refusals.delete(version)
        p.then(forget, forget)
      }
      return p
    }
  }
}

/**
 * A pg.Pool whose connections log in with `feed`'s current login (user and
 * password). When the server refuses a login (SQLSTATE 28P01, as after a
 * rotation revoked the password) the pool reports it to the feed (one
 * afterError call for all the connections refused with that version) and
 * connects again with the next stored login, up to `maxLoginRetries`
 * (default 3) times per connection; queries never see the refusal. `config`
 * is pg.Pool's (host, port, database, max, ssl, ...; `user` and `password`
 * are ignored) plus `maxLoginRetries`, and `pg` (the node-postgres module
 * to use; default require('pg')).
 */
function createPool (feed, config) {
  if (!(feed instanceof CredentialFeed)) throw new TypeError('feed must be a CredentialFeed')
  config = config ?? {}
  if (typeof config !== 'object') throw new TypeError('config must be an object')
  const Pool = poolClass(loadPg(config.pg))
  return new Pool(feed, config)
}

module.exports = { createPool }
