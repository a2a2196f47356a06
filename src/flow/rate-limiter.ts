import { BlockList, isIP } from 'node:net'
import type { RateLimitConfig, RateLimitPer } from '../config/index.js'
import { hitLimit } from '../limits.js'
import { TokenBucket } from './token-bucket.js'

export interface PublishSource {
  readonly listener: 'http' | 'ndjson' | 'amqp' | 'syslog' | 'gelf' | 'forward' | 'otlp-http' | 'otlp-grpc'
  readonly remote?: string | undefined
  readonly apiKey?: string | undefined
  /** The user the publisher is authenticated as (an API key's user; a stream listener's `user`). */
  readonly user?: string | undefined
  readonly exchange: string
}

export interface RateDecision {
  /** 0: admitted (tokens taken). Otherwise how long to wait before trying again. */
  readonly retryAfterMs: number
  /** The rule that refused, as `rateLimits[i]`. */
  readonly rule?: string | undefined
}

/** One rule's events and bytes buckets, for everyone it matches or for one source. */
interface Buckets {
  readonly events: TokenBucket | undefined
  readonly bytes: TokenBucket | undefined
}

interface Rule {
  readonly name: string
  readonly config: RateLimitConfig
  readonly remote: BlockList | undefined
  /** Without `per`: the one pair every matching publisher shares. */
  readonly shared: Buckets | undefined
  /** With `per`: a pair per source value. Insertion order is recency order (touched entries move to the end). */
  readonly sources: Map<string, Buckets> | undefined
}

/**
 * The ingest rate limits. Each rule is one pair of buckets (events and bytes) shared by every
 * publisher it matches, or with `per` one pair per distinct source (user, API key or address);
 * several rules can match one publish, and every one must admit it, so the strictest wins. A
 * refused publish takes no tokens from any rule.
 *
 * A per-source rule keeps at most `maxSources` pairs, forgetting the least recently used: a
 * forgotten source starts again with full buckets, so an evicted bucket is a looser limit, never
 * a stricter one, and memory stays bounded however many addresses a flood comes from.
 */
export class RateLimiter {
  readonly #rules: Rule[]
  readonly refusedByRule = new Map<string, number>()
  /** Per-source bucket pairs forgotten to stay under a rule's maxSources, by rule. */
  readonly evictedByRule = new Map<string, number>()

  constructor(configs: readonly RateLimitConfig[], now: number = Date.now()) {
    this.#rules = configs.map((c, i) => {
      let remote: BlockList | undefined
      if (c.match.remote !== null) {
        remote = new BlockList()
        const [addr, bits] = c.match.remote.split('/') as [string, string | undefined]
        const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
        if (bits === undefined) remote.addAddress(addr, family)
        else remote.addSubnet(addr, Number(bits), family)
      }
      const shared = c.per === null
      return { name: `rateLimits[${i}]`, config: c, remote, shared: shared ? newBuckets(c, now) : undefined, sources: shared ? undefined : new Map<string, Buckets>() }
    })
  }

  get active(): boolean {
    return this.#rules.length > 0
  }

  /** Per-source bucket pairs held now, by rule (only rules with `per`). */
  sourceCounts(): Map<string, number> {
    const out = new Map<string, number>()
    for (const r of this.#rules) if (r.sources !== undefined) out.set(r.name, r.sources.size)
    return out
  }

  #matches(rule: Rule, src: PublishSource): boolean {
    const m = rule.config.match
    if (m.listener !== null && m.listener !== src.listener) return false
    if (m.exchange !== null && m.exchange !== src.exchange) return false
    if (m.apiKey !== null && m.apiKey !== src.apiKey) return false
    if (m.user !== null && m.user !== src.user) return false
    if (rule.remote !== undefined) {
      const addr = stripMapped(src.remote)
      if (addr === undefined) return false
      if (!rule.remote.check(addr, isIP(addr) === 6 ? 'ipv6' : 'ipv4')) return false
    }
    // A publish without the value `per` names (no API key, a UDP datagram's address) is not this rule's.
    return rule.config.per === null || sourceOf(rule.config.per, src) !== undefined
  }

  /** The rule's buckets for this source; a per-source pair is made on first use, full. */
  #buckets(rule: Rule, src: PublishSource, now: number): Buckets {
    if (rule.shared !== undefined) return rule.shared
    const sources = rule.sources!
    const key = sourceOf(rule.config.per!, src) ?? ''
    let buckets = sources.get(key)
    if (buckets !== undefined) {
      sources.delete(key)
    } else {
      buckets = newBuckets(rule.config, now)
      if (sources.size >= rule.config.maxSources) {
        const oldest = sources.keys().next().value as string
        sources.delete(oldest)
        this.evictedByRule.set(rule.name, (this.evictedByRule.get(rule.name) ?? 0) + 1)
        hitLimit('rateLimits.maxSources')
      }
    }
    sources.set(key, buckets)
    return buckets
  }

  #matching(src: PublishSource, now: number): { rule: Rule; buckets: Buckets }[] {
    const out: { rule: Rule; buckets: Buckets }[] = []
    for (const rule of this.#rules) if (this.#matches(rule, src)) out.push({ rule, buckets: this.#buckets(rule, src, now) })
    return out
  }

  check(src: PublishSource, events: number, bytes: number, now: number = Date.now()): RateDecision {
    let worst = 0
    let rule: string | undefined
    const matched = this.#matching(src, now)
    for (const { rule: r, buckets: b } of matched) {
      const wait = Math.max(b.events?.wait(events, now) ?? 0, b.bytes?.wait(bytes, now) ?? 0)
      if (wait > worst) {
        worst = wait
        rule = r.name
      }
    }
    if (worst > 0) {
      this.refusedByRule.set(rule!, (this.refusedByRule.get(rule!) ?? 0) + 1)
      return { retryAfterMs: worst, rule }
    }
    for (const { buckets: b } of matched) {
      b.events?.take(events, now)
      b.bytes?.take(bytes, now)
    }
    return { retryAfterMs: 0 }
  }

  /**
   * For a stream door that can send part of a batch (TCP): how many of `events` (of `bytes` in
   * all) may go now, tokens taken for those; the rest waits `retryAfterMs`. Unlike check(), a
   * batch larger than a bucket is never let through whole, so a sender that bursts in one write
   * is still held to the rate.
   */
  grant(src: PublishSource, events: number, bytes: number, now: number = Date.now()): { granted: number; retryAfterMs: number; rule?: string | undefined } {
    const perEvent = events > 0 ? bytes / events : 0
    let granted = events
    let rule: string | undefined
    const matched = this.#matching(src, now)
    for (const { rule: r, buckets: b } of matched) {
      let k = events
      if (b.events !== undefined) k = Math.min(k, Math.floor(b.events.tokens(now)))
      if (b.bytes !== undefined && perEvent > 0) k = Math.min(k, Math.floor(b.bytes.tokens(now) / perEvent))
      if (k < granted) {
        granted = Math.max(0, k)
        rule = r.name
      }
    }
    if (granted > 0) {
      for (const { buckets: b } of matched) {
        b.events?.take(granted, now)
        b.bytes?.take(granted * perEvent, now)
      }
    }
    if (granted === events) return { granted, retryAfterMs: 0 }
    // Time until the next event fits under every rule.
    let wait = 1
    for (const { buckets: b } of matched) wait = Math.max(wait, b.events?.wait(1, now) ?? 0, b.bytes?.wait(Math.max(1, perEvent), now) ?? 0)
    if (granted === 0 && rule !== undefined) this.refusedByRule.set(rule, (this.refusedByRule.get(rule) ?? 0) + 1)
    return { granted, retryAfterMs: wait, rule }
  }

  describe(name: string): RateLimitConfig | undefined {
    return this.#rules.find((r) => r.name === name)?.config
  }
}

function newBuckets(c: RateLimitConfig, now: number): Buckets {
  return {
    events: c.eventsPerSec === null ? undefined : new TokenBucket(c.eventsPerSec, c.burstEvents ?? c.eventsPerSec, now),
    bytes: c.bytesPerSec === null ? undefined : new TokenBucket(c.bytesPerSec, c.bytesPerSec, now),
  }
}

/** The value a per-source rule keys its buckets by; an address counts as its IPv4 form when it has one. */
function sourceOf(per: RateLimitPer, src: PublishSource): string | undefined {
  if (per === 'remote') return stripMapped(src.remote)
  return per === 'user' ? src.user : src.apiKey
}

function stripMapped(addr: string | undefined): string | undefined {
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
  return addr?.startsWith('::ffff:') === true && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr
}
