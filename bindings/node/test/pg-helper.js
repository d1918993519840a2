'use strict'
// The private PostgreSQL cluster the PostgreSQL tests use: the one test.sh
// started for the whole run (STRONGROOM_NODE_PG_URL), else one this process
// starts with strongroom-testpg (stopped when the process exits). Never a
// server started by hand.
const { spawn } = require('node:child_process')
const path = require('node:path')
const readline = require('node:readline')
const crypto = require('node:crypto')
const net = require('node:net')
const { repo } = require('./helpers.js')

let started = null

function clusterUrl () {
  if (process.env.STRONGROOM_NODE_PG_URL) return Promise.resolve(process.env.STRONGROOM_NODE_PG_URL)
  started ??= new Promise((resolve, reject) => {
    const target = process.env.CARGO_TARGET_DIR || path.join(repo, 'target')
    const child = spawn(path.join(target, 'debug', 'strongroom-testpg'), [], { stdio: ['pipe', 'pipe', 'inherit'] })
    child.on('error', reject)
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      if (!line.startsWith('postgres://')) return reject(new Error(`strongroom-testpg printed ${line}`))
      // The cluster must not keep this process alive: when the process
      // ends, the child's standard input closes and it stops the cluster.
      child.unref()
      child.stdin.unref()
      child.stdout.unref()
      resolve(line.trim())
    })
  })
  return started
}

/** A fresh database on the cluster: its superuser URL. */
async function freshDatabase (prefix) {
  const { Client } = require('pg')
  const url = await clusterUrl()
  const name = `${prefix}_${crypto.randomBytes(4).toString('hex')}`
  const c = new Client({ connectionString: url })
  await c.connect()
  await c.query(`CREATE DATABASE "${name}"`)
  await c.end()
  const u = new URL(url)
  u.pathname = `/${name}`
  return { url: u.toString(), name, host: u.hostname, port: Number(u.port) }
}

/**
 * A TCP relay to the server that can hold new connections (a slow network):
 * hold() keeps connections made from then on waiting, release() lets them
 * through. A connection held has already taken its login from the feed.
 */
async function gate (port) {
  let holding = false
  let held = []
  const sockets = new Set()
  const server = net.createServer((c) => {
    sockets.add(c)
    const go = () => {
      const s = net.connect(port, '127.0.0.1')
      sockets.add(s)
      c.pipe(s)
      s.pipe(c)
      const end = () => { c.destroy(); s.destroy() }
      for (const x of [c, s]) { x.on('error', end); x.on('close', end) }
    }
    if (holding) {
      c.pause()
      held.push(go)
    } else {
      go()
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    hold () { holding = true },
    release () {
      holding = false
      const h = held
      held = []
      for (const go of h) go()
    },
    get held () { return held.length },
    close () {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(resolve))
    }
  }
}

module.exports = { clusterUrl, freshDatabase, gate }
