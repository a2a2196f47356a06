import { describe, expect, it } from 'vitest'
import { signForwarded, verifyForwarded } from '../../src/auth/forwarded.js'

const secret = 'cluster-secret-0123456789'
const now = 1_800_000_000_000

describe('a forwarded request signature', () => {
  const sig = signForwarded(secret, 'POST', '/v1/groups/g/fetch', 'alice', now)

  it('holds for that request, user and secret, within 30 s either way', () => {
    expect(sig).toMatch(/^v1\.1800000000000\.[0-9a-f]{64}$/)
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/g/fetch', 'alice', now)).toBe(true)
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/g/fetch', 'alice', now + 30_000)).toBe(true)
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/g/fetch', 'alice', now - 30_000)).toBe(true)
  })

  it('fails for anything else: time, secret, method, path, query, user, or a mangled value', () => {
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/g/fetch', 'alice', now + 30_001)).toBe(false)
    expect(verifyForwarded(sig, 'another-secret-0123456789', 'POST', '/v1/groups/g/fetch', 'alice', now)).toBe(false)
    expect(verifyForwarded(sig, secret, 'GET', '/v1/groups/g/fetch', 'alice', now)).toBe(false)
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/h/fetch', 'alice', now)).toBe(false)
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/g/fetch?x=1', 'alice', now)).toBe(false)
    expect(verifyForwarded(sig, secret, 'POST', '/v1/groups/g/fetch', 'admin', now)).toBe(false)
    for (const bad of ['', secret, 'v1..', `v2${sig.slice(2)}`, `${sig}0`, sig.replace(/.$/, (c) => (c === '0' ? '1' : '0')), `v1.${now}.${'z'.repeat(64)}`]) {
      expect(verifyForwarded(bad, secret, 'POST', '/v1/groups/g/fetch', 'alice', now)).toBe(false)
    }
  })
})
