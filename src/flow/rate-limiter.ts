import { BlockList, isIP } from 'node:net'
import type { RateLimitConfig } from '../config/index.js'
import { TokenBucket } from './token-bucket.js'

export interface PublishSource {
  readonly listener: 'http' | 'ndjson' | 'amqp' | 'syslog'
  readonly remote?: string | undefined
  readonly apiKey?: string | undefined
  readonly exchange: string
}

export interface RateDecision {
  /** 0: admitted (tokens taken). Otherwise how long to wait before trying again. */
  readonly retryAfterMs: number
  /** The rule that refused, as `rateLimits[i]`. */
  readonly rule?: string | undefined
}

interface Rule {
  readonly name: string
  readonly config: RateLimitConfig
  readonly remote: BlockList | undefined
  readonly events: TokenBucket | undefined
  readonly bytes: TokenBucket | undefined
}

/**
 * The ingest rate limits. Each rule is one pair of buckets (events and bytes) shared by every
 * publisher it matches; several rules can match one publish, and every one must admit it, so the
 * strictest wins. A refused publish takes no tokens from any rule.
 */
export class RateLimiter {
  readonly #rules: Rule[]
  readonly refusedByRule = new Map<string, number>()

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
      const events = c.eventsPerSec === null ? undefined : new TokenBucket(c.eventsPerSec, c.burstEvents ?? c.eventsPerSec, now)
      const bytes = c.bytesPerSec === null ? undefined : new TokenBucket(c.bytesPerSec, c.bytesPerSec, now)
      return { name: `rateLimits[${i}]`, config: c, remote, events, bytes }
    })
  }

  get active(): boolean {
    return this.#rules.length > 0
  }

  #matches(rule: Rule, src: PublishSource): boolean {
    const m = rule.config.match
    if (m.listener !== null && m.listener !== src.listener) return false
    if (m.exchange !== null && m.exchange !== src.exchange) return false
    if (m.apiKey !== null && m.apiKey !== src.apiKey) return false
    if (rule.remote !== undefined) {
      const addr = stripMapped(src.remote)
      if (addr === undefined) return false
      if (!rule.remote.check(addr, isIP(addr) === 6 ? 'ipv6' : 'ipv4')) return false
    }
    return true
  }

  check(src: PublishSource, events: number, bytes: number, now: number = Date.now()): RateDecision {
    let worst = 0
    let rule: string | undefined
    const matched: Rule[] = []
    for (const r of this.#rules) {
      if (!this.#matches(r, src)) continue
      matched.push(r)
      const wait = Math.max(r.events?.wait(events, now) ?? 0, r.bytes?.wait(bytes, now) ?? 0)
      if (wait > worst) {
        worst = wait
        rule = r.name
      }
    }
    if (worst > 0) {
      this.refusedByRule.set(rule!, (this.refusedByRule.get(rule!) ?? 0) + 1)
      return { retryAfterMs: worst, rule }
    }
    for (const r of matched) {
      r.events?.take(events, now)
      r.bytes?.take(bytes, now)
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
    const matched: Rule[] = []
    for (const r of this.#rules) {
      if (!this.#matches(r, src)) continue
      matched.push(r)
      let k = events
      if (r.events !== undefined) k = Math.min(k, Math.floor(r.events.tokens(now)))
      if (r.bytes !== undefined && perEvent > 0) k = Math.min(k, Math.floor(r.bytes.tokens(now) / perEvent))
      if (k < granted) {
        granted = Math.max(0, k)
        rule = r.name
      }
    }
    if (granted > 0) {
      for (const r of matched) {
        r.events?.take(granted, now)
        r.bytes?.take(granted * perEvent, now)
      }
    }
    if (granted === events) return { granted, retryAfterMs: 0 }
    // Time until the next event fits under every rule.
    let wait = 1
    for (const r of matched) wait = Math.max(wait, r.events?.wait(1, now) ?? 0, r.bytes?.wait(Math.max(1, perEvent), now) ?? 0)
    if (granted === 0 && rule !== undefined) this.refusedByRule.set(rule, (this.refusedByRule.get(rule) ?? 0) + 1)
    return { granted, retryAfterMs: wait, rule }
  }

  describe(name: string): RateLimitConfig | undefined {
    return this.#rules.find((r) => r.name === name)?.config
  }
}

function stripMapped(addr: string | undefined): string | undefined {
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
  return addr?.startsWith('::ffff:') === true && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr
}
