'use strict'
// Seal/open 1 KiB through strongroom vs node:crypto AES-256-GCM with a fresh
// randomBytes(12) nonce, in one run. Prints the time per operation and the
// ratio strongroom / node:crypto (lower is better; the target is <= 0.3).
//
//   node bench.js [--iterations N] [--rounds R] [--size BYTES]

const crypto = require('node:crypto')
const { Strongroom } = require('./index.js')

function arg (name, dflt) {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

const N = arg('--iterations', 20000)
const SIZE = arg('--size', 1024)
const ROUNDS = arg('--rounds', 25)

const key = crypto.randomBytes(32)
const plaintext = crypto.randomBytes(SIZE)
const path = 'bench/value'
const version = 1
// The same associated data strongroom binds: header, path, version.
const aad = Buffer.alloc(20 + 4 + path.length + 8)

function nodeSeal () {
  const iv = crypto.randomBytes(12)
  const c = crypto.createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(aad)
  const body = c.update(plaintext)
  c.final()
  return [iv, body, c.getAuthTag()]
}

function nodeOpen ([iv, body, tag]) {
  const d = crypto.createDecipheriv('aes-256-gcm', key, iv)
  d.setAAD(aad)
  d.setAuthTag(tag)
  const out = d.update(body)
  d.final()
  return out
}

async function time (fn) {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) await fn()
  return Number(process.hrtime.bigint() - t0) / N
}

function timeSync (fn) {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) fn()
  return Number(process.hrtime.bigint() - t0) / N
}

async function main () {
  const sr = await Strongroom.open(':memory:', { key: crypto.randomBytes(32) })
  const ctx = { path, version }
  const sealed = await sr.sealValue(plaintext, ctx)
  const nodeSealed = nodeSeal()
  if (!(await sr.openValue(sealed, ctx)).reveal().equals(plaintext)) throw new Error('round trip')
  if (!nodeOpen(nodeSealed).equals(plaintext)) throw new Error('node round trip')

  // Many short interleaved rounds: each round times both sides back to back,
  // so load from other processes hits both alike; the median of the
  // per-round ratios is reported (and each side's best round for scale).
  const rounds = { seal: [], open: [] }
  const best = { srSeal: Infinity, srOpen: Infinity, nodeSeal: Infinity, nodeOpen: Infinity }
  for (let r = 0; r < ROUNDS; r++) {
    const ns = timeSync(nodeSeal)
    const ss = await time(() => sr.sealValue(plaintext, ctx))
    const no = timeSync(() => nodeOpen(nodeSealed))
    const so = await time(() => sr.openValue(sealed, ctx))
    rounds.seal.push(ss / ns)
    rounds.open.push(so / no)
    best.nodeSeal = Math.min(best.nodeSeal, ns)
    best.srSeal = Math.min(best.srSeal, ss)
    best.nodeOpen = Math.min(best.nodeOpen, no)
    best.srOpen = Math.min(best.srOpen, so)
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]
  const us = (ns) => (ns / 1000).toFixed(2).padStart(6) + ' us'
  console.log(`strongroom bench: ${SIZE}-byte values, ${ROUNDS} interleaved rounds of ${N} ops, node ${process.version}`)
  console.log(`seal  strongroom ${us(best.srSeal)}  node:crypto+randomBytes(12) ${us(best.nodeSeal)}  ` +
    `ratio median ${median(rounds.seal).toFixed(2)}x (best-vs-best ${(best.srSeal / best.nodeSeal).toFixed(2)}x)`)
  console.log(`open  strongroom ${us(best.srOpen)}  node:crypto                 ${us(best.nodeOpen)}  ` +
    `ratio median ${median(rounds.open).toFixed(2)}x (best-vs-best ${(best.srOpen / best.nodeOpen).toFixed(2)}x)`)
  console.log('ratio = strongroom time / node:crypto time; target <= 0.3x')
}

main().catch((e) => { console.error(e); process.exit(1) })
