import { Rng } from './rng.js'

/** The group settings one seed runs with; every field maps to a YAML key of the group. */
export interface SimConfig {
  readonly dispatch: 'fair' | 'round-robin'
  readonly ackMode: 'manual' | 'auto'
  readonly prefetch: number
  readonly ackTimeoutMs: number
  readonly sessionTimeoutMs: number
  /** 0: unlimited. */
  readonly maxDeliveries: number
  readonly retry: { readonly initialMs: number; readonly maxMs: number; readonly multiplier: number; readonly jitter: number }
  readonly messageTtlMs: number | null
  readonly maxBacklog: number | null
  /** false: poison events are parked in the group. */
  readonly deadLetter: boolean
  readonly segmentBytes: number
  readonly members: number
  /** Some events carry their own TTL (the `x-expires-at` header the publish path writes). */
  readonly eventTtl: boolean
}

/**
 * One action of a scenario. Actions are plain data drawn from the seed before the run, and pick
 * what they act on by position (`picks` are fractions into the sorted list of tags held), so a
 * scenario stays meaningful when steps are removed from it: that is what shrinking relies on.
 */
export type Step =
  | { readonly kind: 'publish'; readonly count: number; readonly ageMs: number; readonly ttlMs: number | null }
  | { readonly kind: 'fetch'; readonly member: number; readonly max: number }
  | { readonly kind: 'ack'; readonly picks: readonly number[] | 'all' }
  | { readonly kind: 'nack'; readonly picks: readonly number[] | 'all'; readonly requeue: boolean; readonly delayMs: number | null }
  | { readonly kind: 'extend'; readonly picks: readonly number[] }
  | { readonly kind: 'ackStale'; readonly pick: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'crash' }
  | { readonly kind: 'restart' }
  | { readonly kind: 'cut'; readonly at: number; readonly clean: boolean }
  | { readonly kind: 'redriveParked'; readonly limit: number }
  | { readonly kind: 'purgeParked'; readonly limit: number }

export interface Scenario {
  readonly seed: number
  readonly config: SimConfig
  readonly steps: readonly Step[]
}

export function configFor(rng: Rng): SimConfig {
  const ackTimeoutMs = rng.pick([500, 2000, 5000])
  const initialMs = rng.pick([0, 100, 1000])
  return {
    dispatch: rng.chance(0.7) ? 'fair' : 'round-robin',
    ackMode: rng.chance(0.12) ? 'auto' : 'manual',
    prefetch: rng.pick([1, 3, 10, 100]),
    ackTimeoutMs,
    sessionTimeoutMs: rng.pick([2000, 4000, 8000]),
    maxDeliveries: rng.pick([0, 2, 3, 5]),
    retry: { initialMs, maxMs: Math.max(initialMs, rng.pick([0, 1000, 3000])), multiplier: rng.pick([1, 2]), jitter: rng.pick([0, 0.2]) },
    messageTtlMs: rng.chance(0.25) ? rng.pick([3000, 10_000, 30_000]) : null,
    maxBacklog: rng.chance(0.15) ? rng.int(5, 40) : null,
    deadLetter: rng.chance(0.65),
    segmentBytes: rng.pick([1024, 4096, 65536]),
    members: rng.int(1, 3),
    eventTtl: rng.chance(0.2),
  }
}

const picks = (rng: Rng): number[] | 'all' => (rng.chance(0.2) ? 'all' : Array.from({ length: rng.int(1, 6) }, () => rng.next()))

export function stepsFor(rng: Rng, config: SimConfig, count: number): Step[] {
  const steps: Step[] = []
  const weights = {
    publish: 18,
    fetch: 24,
    ack: 14,
    nackRequeue: 7,
    nackDrop: 3,
    extend: 2,
    ackStale: 3,
    advance: 14,
    crash: 3,
    restart: 1.5,
    cut: 3,
    parked: config.deadLetter ? 0 : 2,
  }
  for (let i = 0; i < count; i++) {
    switch (rng.weighted(weights)) {
      case 'publish':
        steps.push({
          kind: 'publish',
          count: rng.chance(0.3) ? rng.int(10, 40) : rng.int(1, 6),
          ageMs: config.messageTtlMs !== null && rng.chance(0.2) ? rng.int(0, config.messageTtlMs + 1000) : 0,
          ttlMs: config.eventTtl && rng.chance(0.4) ? rng.pick([0, 500, 2000, 10_000]) : null,
        })
        break
      case 'fetch':
        steps.push({ kind: 'fetch', member: rng.int(0, config.members - 1), max: rng.pick([1, 2, 5, 10, 50, 1000]) })
        break
      case 'ack':
        steps.push({ kind: 'ack', picks: picks(rng) })
        break
      case 'nackRequeue':
        steps.push({ kind: 'nack', picks: picks(rng), requeue: true, delayMs: rng.chance(0.5) ? null : rng.pick([0, 0, 200, 3000]) })
        break
      case 'nackDrop':
        steps.push({ kind: 'nack', picks: picks(rng), requeue: false, delayMs: null })
        break
      case 'extend':
        steps.push({ kind: 'extend', picks: Array.from({ length: rng.int(1, 3) }, () => rng.next()) })
        break
      case 'ackStale':
        steps.push({ kind: 'ackStale', pick: rng.next() })
        break
      case 'advance': {
        const horizon = rng.pick([config.ackTimeoutMs / 2, config.ackTimeoutMs + 1, config.sessionTimeoutMs + 1000, config.retry.maxMs + 1, 1000])
        steps.push({ kind: 'advance', ms: Math.max(1, Math.round(rng.next() * horizon)) })
        break
      }
      case 'crash':
        steps.push({ kind: 'crash' })
        break
      case 'restart':
        steps.push({ kind: 'restart' })
        break
      case 'cut':
        steps.push({ kind: 'cut', at: rng.next(), clean: rng.chance(0.3) })
        break
      case 'parked':
        steps.push(rng.chance(0.6) ? { kind: 'redriveParked', limit: rng.int(1, 5) } : { kind: 'purgeParked', limit: rng.int(1, 5) })
        break
    }
  }
  return steps
}

export function scenarioFor(seed: number, stepCount: number): Scenario {
  const rng = new Rng(seed)
  const config = configFor(rng)
  return { seed, config, steps: stepsFor(rng, config, stepCount) }
}

/** The group's YAML, so the run goes through the configuration's own validation and defaults. */
export function pipelineYaml(c: SimConfig): string {
  const group = [
    'stream: work',
    `dispatch: ${c.dispatch}`,
    `ackMode: ${c.ackMode}`,
    `prefetch: ${c.prefetch}`,
    `ackTimeout: ${c.ackTimeoutMs}ms`,
    `sessionTimeout: ${c.sessionTimeoutMs}ms`,
    `maxDeliveries: ${c.maxDeliveries}`,
    `retryBackoff: { initial: ${c.retry.initialMs}ms, max: ${c.retry.maxMs}ms, multiplier: ${c.retry.multiplier}, jitter: ${c.retry.jitter} }`,
    ...(c.messageTtlMs !== null ? [`messageTtl: ${c.messageTtlMs}ms`] : []),
    ...(c.maxBacklog !== null ? [`maxBacklog: ${c.maxBacklog}`, 'overflow: dead-letter'] : []),
    ...(c.deadLetter ? ['deadLetter: { stream: dlq }'] : []),
  ]
  return [
    'streams:',
    `  work: { segmentSize: ${c.segmentBytes}, fsync: always }`,
    '  dlq: { fsync: always }',
    'groups:',
    `  g: { ${group.join(', ')} }`,
    '',
  ].join('\n')
}

export function formatStep(s: Step): string {
  const p = (x: readonly number[] | 'all'): string => (x === 'all' ? 'all' : `[${x.map((v) => v.toFixed(3)).join(',')}]`)
  switch (s.kind) {
    case 'publish':
      return `publish ${s.count}${s.ageMs > 0 ? ` aged ${s.ageMs}ms` : ''}${s.ttlMs !== null ? ` ttl ${s.ttlMs}ms` : ''}`
    case 'fetch':
      return `fetch m${s.member} max ${s.max}`
    case 'ack':
      return `ack ${p(s.picks)}`
    case 'nack':
      return `nack ${p(s.picks)} requeue ${s.requeue}${s.delayMs !== null ? ` delay ${s.delayMs}ms` : ''}`
    case 'extend':
      return `extend ${p(s.picks)}`
    case 'ackStale':
      return `ack a stale tag ${s.pick.toFixed(3)}`
    case 'advance':
      return `advance ${s.ms}ms`
    case 'crash':
      return 'crash and reopen'
    case 'restart':
      return 'clean stop and reopen'
    case 'cut':
      return `cut the log tail at ${(s.at * 100).toFixed(1)}% (${s.clean ? 'after a clean stop' : 'after a crash'})`
    case 'redriveParked':
      return `redrive ${s.limit} parked`
    case 'purgeParked':
      return `purge ${s.limit} parked`
  }
}
