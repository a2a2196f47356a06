import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TagResult } from '../../../src/consumers/index.js'
import type { AppendRecord } from '../../../src/log/index.js'
import { expiresAtHeader } from '../../../src/streams/ttl.js'
import { VirtualTime } from './clock.js'
import { KnownIssueHit, Model, SimFailure, type KnownIssue, type SeenDeath } from './model.js'
import { Rng } from './rng.js'
import { formatStep, pipelineYaml, scenarioFor, type Scenario, type Step } from './scenario.js'
import { describeDelivery, Tracker, World, type Faults } from './world.js'

export interface RunOptions {
  /** Known issues to fail on instead of tolerating (see model.ts). */
  readonly strict?: ReadonlySet<string>
  /** Where the data dirs go: a tmpfs when there is one, so fsyncs cost nothing. */
  readonly root?: string
  readonly faults?: Faults
}

export interface RunResult {
  readonly seed: number
  readonly ok: boolean
  readonly failure?: { readonly message: string; readonly step: number; readonly simFailure: boolean }
  /** Each step as run, with what the group answered. */
  readonly trace: readonly string[]
  readonly totals: { readonly steps: number; readonly published: number; readonly deliveries: number; readonly deaths: number; readonly reopens: number; readonly cuts: number }
  /** Known issues met and gone past (see model.ts), with how often. */
  readonly tolerated: ReadonlyMap<KnownIssue, number>
  /** The known issue the run stopped at, if any. */
  readonly stopped?: { readonly issue: KnownIssue; readonly step: number; readonly message: string }
  readonly ms: number
}

/** A fixed epoch, so timestamps and due times are the same on every run of a seed. */
const epoch = Date.UTC(2026, 0, 1)

export function defaultRoot(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
}

const pickOf = <T>(items: readonly T[], picks: readonly number[] | 'all'): T[] => {
  if (picks === 'all') return [...items]
  const chosen = new Set<number>()
  for (const p of picks) if (items.length > 0) chosen.add(Math.min(items.length - 1, Math.floor(p * items.length)))
  return [...chosen].map((i) => items[i]!)
}

const summarize = (results: readonly TagResult[]): string => {
  const by = new Map<string, number>()
  for (const r of results) by.set(r.status, (by.get(r.status) ?? 0) + 1)
  return [...by].map(([s, n]) => `${n} ${s}`).join(', ')
}

/**
 * Runs one scenario against a real group in a fresh data dir. Each step is followed by a wait
 * for the group to go idle (firing timers due at the current virtual time), then by the checks
 * against the model; after the last step the group is drained: every stored event must end up
 * acked, dead-lettered or parked.
 */
export async function runScenario(scenario: Scenario, opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now()
  const cfg = scenario.config
  const dataDir = await mkdtemp(join(opts.root ?? defaultRoot(), 'sluice-sim-'))
  const time = new VirtualTime(epoch)
  const groupRng = new Rng(scenario.seed ^ 0x5bd1e995)
  const random = (): number => groupRng.next()
  const tracker = new Tracker()
  const config = World.config(pipelineYaml(cfg))
  const model = new Model(cfg, opts.strict ?? new Set(), time.now)
  const trace: string[] = []
  const totals = { steps: 0, published: 0, deliveries: 0, deaths: 0, reopens: 0, cuts: 0 }
  let world: World | undefined
  let dlqRead = 0
  let idSeq = 0
  let stepNo = -1
  let note = ''

  const settle = async (): Promise<void> => {
    await tracker.idle()
    for (let fn = time.takeDue(time.now); fn !== undefined; fn = time.takeDue(time.now)) {
      fn()
      await tracker.idle()
    }
  }

  const advance = async (ms: number): Promise<void> => {
    const to = time.now + ms
    model.advance(to)
    for (let fn = time.takeDue(to); fn !== undefined; fn = time.takeDue(to)) {
      fn()
      await tracker.idle()
    }
    time.setNow(to)
  }

  const check = async (w: World): Promise<void> => {
    const deaths: SeenDeath[] = []
    if (cfg.deadLetter) {
      while (dlqRead < w.dlq.log.endOffset) {
        const { records, nextOffset } = await w.dlq.log.read(dlqRead, { maxRecords: 1000 })
        for (const r of records) {
          const h = JSON.parse(r.headers?.toString('utf8') ?? '{}') as Record<string, unknown>
          const entries = Array.isArray(h['x-death']) ? (h['x-death'] as Array<Record<string, unknown>>) : []
          const first = entries[0]
          deaths.push({ id: r.id, reason: String(h['x-last-death-reason']), body: r.body.toString('utf8'), group: first?.['group'], stream: first?.['stream'], entries: entries.length, count: first?.['count'] })
        }
        dlqRead = nextOffset
      }
      model.died(deaths, time.now)
    } else {
      const parked = w.group.parkedEvents(Number.MAX_SAFE_INTEGER)
      deaths.push(...model.newlyParked(parked))
      model.died(deaths, time.now)
      model.checkParked(parked.map((p) => p.offset))
    }
    totals.deaths += deaths.length
    if (deaths.length > 0) note += ` · died: ${deaths.map((d) => `${d.id}(${d.reason})`).join(' ')}`
    model.checkGroup({ endOffset: w.work.log.endOffset, inFlight: w.group.inFlightCount, backlog: w.group.backlog, cursor: w.group.cursor })
  }

  const reopen = async (crash: boolean, cutAt?: number): Promise<void> => {
    await world!.close(crash)
    const w = world!
    world = undefined
    if (cutAt !== undefined) {
      const end = await w.cutWork(cutAt)
      model.cut(end)
      note += ` → log end ${end}`
      totals.cuts++
    }
    world = await World.open(dataDir, config, time, random, tracker, opts.faults)
    model.reopened(time.now)
    totals.reopens++
  }

  const fetch = async (w: World, member: string, max: number): Promise<number> => {
    model.beforeFetch(member, time.now)
    const got = (await w.group.fetch(member, max, 0)).map(describeDelivery)
    note += ` → ${got.length === 0 ? 'nothing' : got.map((d) => `${d.offset}#${d.count}${d.redelivered ? 'r' : ''}`).join(' ')}`
    model.afterFetch(member, max, got, time.now)
    totals.deliveries += got.length
    return got.length
  }

  const ack = async (w: World, tags: string[], staleTags = false): Promise<void> => {
    const results = await w.group.ack(tags)
    note += ` → ${summarize(results)}`
    model.settled('ack', tags, results, time.now, { staleTags })
  }

  const exec = async (w: World, step: Step): Promise<void> => {
    const now = time.now
    switch (step.kind) {
      case 'publish': {
        const records: AppendRecord[] = []
        const meta: Array<{ id: string; body: string; expiresAt: number }> = []
        for (let i = 0; i < step.count; i++) {
          const id = `e${idSeq++}`
          const body = JSON.stringify({ id, at: now })
          const timestamp = now - step.ageMs
          const own = step.ttlMs === null ? Number.POSITIVE_INFINITY : now + step.ttlMs
          const group = cfg.messageTtlMs === null ? Number.POSITIVE_INFINITY : timestamp + cfg.messageTtlMs
          records.push({
            timestamp,
            key: 'k',
            body: Buffer.from(body),
            json: true,
            id,
            headers: step.ttlMs === null ? undefined : Buffer.from(JSON.stringify({ [expiresAtHeader]: own })),
          })
          meta.push({ id, body, expiresAt: Math.min(own, group) })
        }
        const res = await w.work.append(records)
        if (res.lastOffset - res.baseOffset + 1 !== step.count) model.fail(`append of ${step.count} stored offsets ${res.baseOffset}-${res.lastOffset}`)
        model.stored(meta.map((m, i) => ({ ...m, offset: res.baseOffset + i })))
        note += ` → offsets ${res.baseOffset}-${res.lastOffset}`
        totals.published += step.count
        return
      }
      case 'fetch':
        await fetch(w, `m${step.member}`, step.max)
        return
      case 'ack':
      case 'nack':
      case 'extend': {
        const tags = pickOf(model.heldTags(), step.picks)
        if (tags.length === 0) {
          note += ' → nothing held'
          return
        }
        note += ` ${tags.join(' ')}`
        if (step.kind === 'ack') return ack(w, tags)
        if (step.kind === 'extend') {
          const results = w.group.extend(tags)
          note += ` → ${summarize(results)}`
          model.settled('extend', tags, results, now)
          return
        }
        const results = await w.group.nack(tags, { requeue: step.requeue, delayMs: step.delayMs ?? undefined })
        note += ` → ${summarize(results)}`
        model.settled('nack', tags, results, now, { requeue: step.requeue })
        return
      }
      case 'ackStale': {
        const stale = model.staleTags()
        if (stale.length === 0) {
          note += ' → no stale tag'
          return
        }
        const s = stale[Math.min(stale.length - 1, Math.floor(step.pick * stale.length))]!
        note += ` ${s.tag}${s.beforeReopen ? ' (from before a reopen)' : ''}`
        return ack(w, [s.tag], true)
      }
      case 'advance':
        await advance(step.ms)
        return
      case 'crash':
      case 'restart':
        return reopen(step.kind === 'crash')
      case 'cut': {
        if (model.end === 0) {
          note += ' → empty log: a crash only'
          return reopen(true)
        }
        const at = Math.min(model.end - 1, Math.floor(step.at * model.end))
        note += ` (offset ${at})`
        return reopen(!step.clean, at)
      }
      case 'redriveParked': {
        const n = await w.group.redriveParked(step.limit)
        note += ` → ${n}`
        model.redriven(step.limit, n)
        return
      }
      case 'purgeParked': {
        const n = await w.group.purgeParked(step.limit)
        note += ` → ${n}`
        model.purged(step.limit, n)
        return
      }
    }
  }

  const runStep = async (label: string, fn: (w: World) => Promise<void>): Promise<void> => {
    note = ''
    try {
      await fn(world!)
      await settle()
      await check(world!)
    } finally {
      trace.push(`${label}${note}`)
    }
  }

  let failure: RunResult['failure']
  let stopped: RunResult['stopped']
  try {
    world = await World.open(dataDir, config, time, random, tracker, opts.faults)
    for (stepNo = 0; stepNo < scenario.steps.length; stepNo++) {
      const step = scenario.steps[stepNo]!
      await runStep(`${stepNo}: ${formatStep(step)}`, (w) => exec(w, step))
      totals.steps++
    }
    // The drain: ack what is held, fetch what is left, and let time bring back what waits.
    const pause = Math.max(cfg.ackTimeoutMs, cfg.sessionTimeoutMs, cfg.retry.maxMs, 3000) + 1000
    // A round acks, fetches or waits: enough for prefetch 1 and a wait per event, and then some.
    const drainRounds = 100 + 3 * model.end
    for (let round = 0; ; round++) {
      if (model.unsettled().length === 0 && model.heldTags().length === 0) break
      if (round >= drainRounds) model.fail(`not drained after ${drainRounds} rounds: unsettled offsets ${model.unsettled().slice(0, 50).join(',')}`)
      stepNo = scenario.steps.length + round
      const held = model.heldTags()
      if (held.length > 0) {
        await runStep(`drain ${round}: ack all held ${held.join(' ')}`, (w) => ack(w, held))
        continue
      }
      let got = 0
      await runStep(`drain ${round}: fetch max 1000`, async (w) => {
        got = await fetch(w, 'drain', 1000)
      })
      if (got === 0) await runStep(`drain ${round}: advance ${pause}ms`, () => advance(pause))
    }
  } catch (err) {
    if (err instanceof KnownIssueHit) stopped = { issue: err.issue, step: stepNo, message: err.message }
    else {
      failure = { message: err instanceof Error ? err.message : String(err), step: stepNo, simFailure: err instanceof SimFailure }
      if (!(err instanceof SimFailure) && err instanceof Error && err.stack !== undefined) trace.push(err.stack)
    }
  } finally {
    try {
      await world?.close(false)
    } catch (err) {
      failure ??= { message: `closing: ${err instanceof Error ? err.message : String(err)}`, step: stepNo, simFailure: false }
    }
    await rm(dataDir, { recursive: true, force: true })
  }
  return { seed: scenario.seed, ok: failure === undefined, failure, stopped, tolerated: model.tolerated, trace, totals, ms: Date.now() - started }
}

export function runSeed(seed: number, steps: number, opts: RunOptions = {}): Promise<RunResult> {
  return runScenario(scenarioFor(seed, steps), opts)
}

/**
 * A smaller scenario that still fails with an invariant broken: steps past the failing one go,
 * then chunks of steps are removed while the run still fails. Each try is a whole run.
 */
export async function shrink(scenario: Scenario, first: RunResult, opts: RunOptions = {}, budgetMs = 60_000): Promise<{ scenario: Scenario; result: RunResult }> {
  const started = Date.now()
  let best = scenario
  let bestResult = first
  const failsStill = async (s: Scenario): Promise<RunResult | undefined> => {
    const r = await runScenario(s, opts)
    return r.failure?.simFailure === true ? r : undefined
  }
  const cut = first.failure !== undefined && first.failure.step < scenario.steps.length ? { ...scenario, steps: scenario.steps.slice(0, first.failure.step + 1) } : scenario
  const r0 = await failsStill(cut)
  if (r0 !== undefined) {
    best = cut
    bestResult = r0
  }
  for (let chunk = Math.max(1, Math.floor(best.steps.length / 2)); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let i = 0; i < best.steps.length && Date.now() - started < budgetMs; ) {
      const candidate = { ...best, steps: [...best.steps.slice(0, i), ...best.steps.slice(i + chunk)] }
      const r = candidate.steps.length === 0 ? undefined : await failsStill(candidate)
      if (r !== undefined) {
        best = candidate
        bestResult = r
      } else i += chunk
    }
    if (chunk === 1) break
  }
  return { scenario: best, result: bestResult }
}

export function report(result: RunResult, scenario: Scenario, replay = `SIM_SEED=${result.seed} SIM_STEPS=${scenario.steps.length}`): string {
  const lines = [
    `seed ${result.seed} failed at step ${result.failure?.step}: ${result.failure?.message}`,
    `config: ${JSON.stringify(scenario.config)}`,
    'steps:',
    ...result.trace.map((t) => `  ${t}`),
    `replay: ${replay} npx vitest run test/consumers/simulation.test.ts`,
  ]
  return lines.join('\n')
}
