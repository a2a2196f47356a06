// Stored secrets: scrypt password hashes and SHA-256 API key hashes, in self-describing strings
// so the cost parameters travel with each hash and can be raised later without breaking old ones.
//
//   passwordHash: scrypt$<N>$<r>$<p>$<salt, base64url>$<hash, base64url>
//   keyHash:      sha256:<64 hex digits>
//
// An API key is long and random, so one SHA-256 is enough to keep it unrecoverable; a password is
// chosen by a person, so it gets scrypt, slow and memory-hard, as OWASP advises.

import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto'

export interface ScryptHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly hash: Buffer
}

/** OWASP's scrypt minimum (N=2^17, r=8, p=1) costs 128 MiB a check; 2^15 keeps a login near 50 ms and 32 MiB. */
export const scryptDefaults = { N: 2 ** 15, r: 8, p: 1, saltBytes: 16, hashBytes: 32 } as const

// A stored hash names its own cost; these bounds keep a hostile or mistyped file from asking for
// gigabytes of memory or minutes of CPU at every login.
const scryptNMax = 2 ** 20
const scryptRMax = 32
const scryptPMax = 16
const scryptMemoryMax = 256 * 1024 * 1024

function scrypt(password: string, salt: Buffer, bytes: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, bytes, opts, (err, key) => (err ? reject(err) : resolve(key))))
}

/** A passwordHash parsed, or why it is not one. The message never quotes the hash. */
export function parsePasswordHash(text: string): ScryptHash | { readonly problem: string } {
  const parts = text.split('$')
  if (parts[0] !== 'scrypt' || parts.length !== 6) return { problem: 'is not a passwordHash; expected scrypt$N$r$p$salt$hash as `sluice passwd` prints it' }
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string]
  const N = /^\d{1,8}$/.test(n) ? Number(n) : NaN
  const R = /^\d{1,3}$/.test(r) ? Number(r) : NaN
  const P = /^\d{1,3}$/.test(p) ? Number(p) : NaN
  if (!(N >= 2 && N <= scryptNMax && (N & (N - 1)) === 0)) return { problem: `scrypt N must be a power of two from 2 to ${scryptNMax}` }
  if (!(R >= 1 && R <= scryptRMax)) return { problem: `scrypt r must be from 1 to ${scryptRMax}` }
  if (!(P >= 1 && P <= scryptPMax)) return { problem: `scrypt p must be from 1 to ${scryptPMax}` }
  if (128 * N * R > scryptMemoryMax) return { problem: `scrypt N and r ask for more than ${scryptMemoryMax / 1024 / 1024} MiB a check` }
  const base64url = /^[A-Za-z0-9_-]+$/
  if (!base64url.test(salt) || !base64url.test(hash)) return { problem: 'the salt and the hash must be base64url' }
  const saltBytes = Buffer.from(salt, 'base64url')
  const hashBytes = Buffer.from(hash, 'base64url')
  if (saltBytes.length < 8) return { problem: 'the salt must be at least 8 bytes' }
  if (hashBytes.length < 16 || hashBytes.length > 64) return { problem: 'the hash must be 16 to 64 bytes' }
  return { N, r: R, p: P, salt: saltBytes, hash: hashBytes }
}

/** A passwordHash for a password, with a fresh random salt. */
export async function hashPassword(password: string, cost: { N: number; r: number; p: number } = scryptDefaults): Promise<string> {
  const salt = randomBytes(scryptDefaults.saltBytes)
  const hash = await scrypt(password, salt, scryptDefaults.hashBytes, { ...cost, maxmem: scryptMemoryMax + 1024 * 1024 })
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

/** Whether a password matches a parsed hash; the comparison takes the same time wherever they differ. */
export async function verifyPassword(password: string, stored: ScryptHash): Promise<boolean> {
  const got = await scrypt(password, stored.salt, stored.hash.length, { N: stored.N, r: stored.r, p: stored.p, maxmem: scryptMemoryMax + 1024 * 1024 })
  return timingSafeEqual(got, stored.hash)
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** A keyHash parsed to its 32 bytes, or why it is not one. The message never quotes the hash. */
export function parseKeyHash(text: string): Buffer | { readonly problem: string } {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(text)
  if (m === null) return { problem: 'is not a keyHash; expected sha256: and 64 hex digits as `sluice passwd --api-key` prints it' }
  return Buffer.from(m[1]!, 'hex')
}

export function hashApiKey(key: string): string {
  return `sha256:${sha256(key).toString('hex')}`
}

/** Equal-length digests compared in constant time, so the time taken says nothing about where they differ. */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * How a permission pattern from the file is matched: against the whole name, not a substring
 * (RabbitMQ's `^logs$` and `.*` mean the same here; its unanchored `logs` would also match
 * `mylogs`, here it does not). Throws a SyntaxError for an invalid pattern. The pattern is
 * compiled alone first, so a `)` in it cannot close the anchoring group and escape the anchors.
 */
export function compilePattern(pattern: string): RegExp {
  void new RegExp(pattern)
  return new RegExp(`^(?:${pattern})$`)
}
