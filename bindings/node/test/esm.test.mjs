import test from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import strongroom, { Strongroom, Secret, DecryptionFailed, StrongroomError } from 'strongroom'

test('ESM named and default imports work end to end', async () => {
  assert.equal(strongroom.Strongroom, Strongroom)
  const store = await Strongroom.open(':memory:', { key: randomBytes(32) })
  const ctx = { path: 'esm/value', version: 1 }
  const sealed = await store.sealValue('from esm', ctx)
  const s = await store.openValue(sealed, ctx)
  assert.ok(s instanceof Secret)
  assert.equal(s.reveal().toString(), 'from esm')
  await assert.rejects(store.openValue(sealed, { ...ctx, version: 2 }), (e) =>
    e instanceof DecryptionFailed && e instanceof StrongroomError)
})
