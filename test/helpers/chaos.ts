// A fault schedule against a replicated three-node cluster, and the checker that reads its
// history afterwards (docs/cluster.md, "Replication"). A seeded schedule injects one fault at a
// time (SIGKILL and restart of the leader or a follower, SIGSTOP/SIGCONT pauses, a node cut from
// etcd, a node's internal port cut one way or both, etcd itself killed and restarted) while HTTP
// and AMQP publishers publish with ids, retrying each request with the same ids, and a consumer
// fetches and acks. Everything is on loopback; every loop is bounded in count and time.
//
// The checker: every confirmed id is in the stream exactly once and on every in-sync replica;
// the replicas are identical up to the leader's high watermark; no id is stored twice; each
// publisher's confirmed requests are stored in the order they were confirmed; no event is
// delivered after an ack of it was answered; every stored event was delivered.

import amqp from 'amqplib'
import type { ClusterView } from '../../src/cluster/index.js'
import type { TestCluster } from './cluster.js'
import { waitFor } from './programs.js'

export interface ChaosOptions {
  readonly seed: number
  readonly faults: number
  readonly stream: string
  readonly group: string
  readonly exchange: string
  readonly routingKey: string
  /** The cluster's lease TTL: pauses stay under and over it. */
  readonly leaseTtlMs: number
  readonly log: (line: string) => void
}

export interface ChaosReport {
  readonly seed: number
  readonly faults: ReadonlyArray<string>
  readonly attempted: number
  readonly confirmed: number
  readonly stored: number
  readonly lost: readonly string[]
  readonly duplicated: readonly string[]
  readonly outOfOrder: readonly string[]
  readonly deliveredAfterAck: readonly string[]
  readonly neverDelivered: readonly string[]
  readonly replicaMismatch: readonly string[]
  readonly refusedAnswers: number
}

/** mulberry32: a small seeded generator, so a failing schedule is replayed from its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Delivery {
  readonly id: string
  readonly sentAt: number
}

export async function runChaos(cluster: TestCluster, o: ChaosOptions): Promise<ChaosReport> {
  const rnd = seeded(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const ids = [...cluster.nodes.keys()].sort()
  const paused = new Set<string>()
  const live = (): string[] => ids.filter((n) => cluster.nodes.has(n) && !paused.has(n))
  const status = async (): Promise<ClusterView | undefined> => {
    for (const n of live()) {
      try {
        const res = await fetch(`${cluster.node(n).url}/v1/cluster`, { signal: AbortSignal.timeout(2000) })
        if (res.status === 200) return (await res.json()) as ClusterView
      } catch {
        // next
      }
    }
    return undefined
  }
  const leaderOf = async (): Promise<string | undefined> => (await status())?.placement.find((p) => p.stream === o.stream)?.node

  let stop = false
  let refusedAnswers = 0
  let attempted = 0
  /** Per publisher, its confirmed requests' ids in confirm order. */
  const confirmed = new Map<string, string[][]>()

  const httpPublisher = async (name: string): Promise<void> => {
    const mine: string[][] = []
    confirmed.set(name, mine)
    for (let k = 0; !stop && k < 100_000; k++) {
      const batch = Array.from({ length: 5 }, (_, i) => ({ id: `${name}-${k}-${i}`, k, i }))
      attempted += batch.length
      for (let attempt = 0; attempt < 100 && !stop; attempt++) {
        const via = pick(live())
        if (via === undefined) {
          await sleep(100)
          continue
        }
        try {
          const res = await fetch(`${cluster.node(via).url}/v1/exchanges/${o.exchange}/publish?routingKey=${o.routingKey}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(batch),
            signal: AbortSignal.timeout(8000),
          })
          await res.text()
          if (res.status === 200) {
            mine.push(batch.map((e) => e.id))
            break
          }
          refusedAnswers++
        } catch {
          refusedAnswers++
        }
        await sleep(50)
      }
    }
  }

  const amqpPublisher = async (name: string): Promise<void> => {
    const mine: string[][] = []
    confirmed.set(name, mine)
    let conn: amqp.ChannelModel | undefined
    let ch: amqp.ConfirmChannel | undefined
    const drop = async (): Promise<void> => {
      const c = conn
      conn = undefined
      ch = undefined
      // A close to a node that went away may never be answered: bounded.
      await Promise.race([c?.close().catch(() => undefined), sleep(2000)])
    }
    for (let k = 0; !stop && k < 100_000; k++) {
      const ids = Array.from({ length: 5 }, (_, i) => `${name}-${k}-${i}`)
      attempted += ids.length
      for (let attempt = 0; attempt < 100 && !stop; attempt++) {
        try {
          if (ch === undefined) {
            const via = pick(live())
            if (via === undefined) throw new Error('no node')
            const view = await status()
            const port = view?.nodes.find((n) => n.id === via)?.amqpPort
            if (port === undefined || port === null) throw new Error('no AMQP port')
            conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`, { timeout: 3000 })
            conn.on('error', () => undefined)
            ch = await Promise.race([conn.createConfirmChannel(), sleep(3000).then(() => Promise.reject(new Error('no channel in 3 s')))])
            ch.on('error', () => undefined)
          }
          const c = ch
          for (const id of ids) c.publish(o.exchange, o.routingKey, Buffer.from(JSON.stringify({ id })), { messageId: id, contentType: 'application/json' })
          await Promise.race([c.waitForConfirms(), sleep(8000).then(() => Promise.reject(new Error('no confirm in 8 s')))])
          mine.push(ids)
          break
        } catch {
          refusedAnswers++
          await drop()
          await sleep(100)
        }
      }
    }
    await drop()
  }

  const deliveries: Delivery[] = []
  const ackedAt = new Map<string, number>()
  const consume = async (drain: boolean): Promise<number> => {
    let got = 0
    for (let round = 0; round < 1_000_000 && (drain || !stop); round++) {
      const via = pick(live())
      if (via === undefined) {
        await sleep(100)
        continue
      }
      try {
        const post = (path: string, body: unknown): Promise<Response> =>
          fetch(`${cluster.node(via).url}/v1/groups/${o.group}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(8000) })
        const sentAt = Date.now()
        const res = await post('fetch', { consumer: 'chaos', max: 50, waitMs: drain ? 0 : 200 })
        if (res.status !== 200) {
          await res.text()
          await sleep(100)
          continue
        }
        const { events } = (await res.json()) as { events: Array<{ id: string; tag: string }> }
        if (events.length === 0) {
          if (drain) return got
          continue
        }
        got += events.length
        for (const e of events) deliveries.push({ id: e.id, sentAt })
        const ack = await post('ack', { consumer: 'chaos', tags: events.map((e) => e.tag) })
        if (ack.status !== 200) {
          await ack.text()
          continue
        }
        const answer = (await ack.json()) as { settled: number; failed: Array<{ tag: string }> }
        const answeredAt = Date.now()
        const failed = new Set(answer.failed.map((f) => f.tag))
        for (const e of events) if (!failed.has(e.tag) && !ackedAt.has(e.id)) ackedAt.set(e.id, answeredAt)
      } catch {
        await sleep(100)
      }
    }
    return got
  }

  const workers = [httpPublisher('h1'), httpPublisher('h2'), amqpPublisher('a1'), consume(false)]

  // ---- the schedule ----------------------------------------------------------------------------
  const faults: string[] = []
  const kinds = ['kill-leader', 'kill-follower', 'pause', 'etcd-cut', 'internal-cut', 'internal-cut-in', 'etcd-restart'] as const
  await sleep(1000)
  for (let i = 0; i < o.faults; i++) {
    const kind = pick(kinds)
    const leader = await leaderOf()
    const node = kind === 'kill-leader' && leader !== undefined ? leader : kind === 'kill-follower' ? pick(ids.filter((n) => n !== leader)) : pick(ids)
    const holdMs = Math.round(300 + rnd() * o.leaseTtlMs * 1.5)
    const line = `fault ${i + 1}/${o.faults}: ${kind}${kind === 'etcd-restart' ? '' : ` ${node}`} for ${holdMs} ms`
    faults.push(line)
    o.log(line)
    switch (kind) {
      case 'kill-leader':
      case 'kill-follower':
        if (!cluster.nodes.has(node)) break
        await cluster.node(node).kill('SIGKILL')
        cluster.nodes.delete(node)
        await sleep(holdMs)
        await cluster.start(node)
        break
      case 'pause': {
        const proc = cluster.nodes.get(node)?.proc
        if (proc === undefined) break
        paused.add(node)
        proc.kill('SIGSTOP')
        await sleep(holdMs)
        proc.kill('SIGCONT')
        paused.delete(node)
        break
      }
      case 'etcd-cut':
        cluster.etcdProxies.get(node)!.cut()
        await sleep(holdMs)
        cluster.etcdProxies.get(node)!.restore()
        break
      case 'internal-cut':
      case 'internal-cut-in':
        cluster.internalProxies.get(node)!.cut(kind === 'internal-cut' ? 'both' : 'in')
        await sleep(holdMs)
        cluster.internalProxies.get(node)!.restore()
        break
      case 'etcd-restart':
        await cluster.restartEtcd()
        await sleep(holdMs)
        break
    }
    await sleep(Math.round(300 + rnd() * 1000))
  }

  // ---- heal, settle, stop the load, drain ------------------------------------------------------
  for (const id of ids) if (!cluster.nodes.has(id)) await cluster.start(id)
  await waitFor('every replica back in sync', async () => {
    const v = await status()
    const p = v?.placement.find((x) => x.stream === o.stream)
    return p !== undefined && p.isr.length === ids.length && v!.nodes.length === ids.length ? true : undefined
  }, 90_000, 250)
  await sleep(1000)
  stop = true
  const ended = await Promise.race([Promise.all(workers).then(() => true), sleep(60_000).then(() => false)])
  if (!ended) throw new Error('a publisher or the consumer did not stop within 60 s of the schedule ending')
  await consume(true)

  // ---- the checker -----------------------------------------------------------------------------
  const view = (await status())!
  const p = view.placement.find((x) => x.stream === o.stream)!
  const leader = p.node
  const copyOf = async (node: string): Promise<string[]> => {
    const out: string[] = []
    for (let from = 0; ; ) {
      const res = await fetch(`${cluster.node(node).url}/v1/streams/${o.stream}/events?from=${from}&limit=1000&copy=local`)
      const { events } = (await res.json()) as { events: Array<{ offset: number; id: string }> }
      if (events.length === 0) return out
      for (const e of events) out[e.offset] = e.id
      from = events.at(-1)!.offset + 1
    }
  }
  const stored = await copyOf(leader)
  const leaderStatus = (await (await fetch(`${cluster.node(leader).url}/v1/cluster`)).json()) as ClusterView
  const hw = (leaderStatus.replication.leading as Record<string, { highWatermark: number }>)[o.stream]?.highWatermark ?? stored.length
  const replicaMismatch: string[] = []
  for (const n of p.isr) {
    if (n === leader) continue
    const copy = await copyOf(n)
    for (let i = 0; i < hw; i++) {
      if (copy[i] !== stored[i]) {
        replicaMismatch.push(`${n} differs from ${leader} at offset ${i}: ${copy[i]} / ${stored[i]}`)
        break
      }
    }
  }
  const count = new Map<string, number>()
  for (const id of stored) count.set(id, (count.get(id) ?? 0) + 1)
  const duplicated = [...count].filter(([, n]) => n > 1).map(([id]) => id)
  const allConfirmed = [...confirmed.values()].flat(2)
  const lost = allConfirmed.filter((id) => !count.has(id))
  const offsetOf = new Map(stored.map((id, i) => [id, i]))
  const outOfOrder: string[] = []
  for (const [name, batches] of confirmed) {
    let last = -1
    for (const b of batches) {
      const first = Math.min(...b.map((id) => offsetOf.get(id) ?? Number.POSITIVE_INFINITY))
      if (first <= last) outOfOrder.push(`${name}: ${b[0]} stored before the request confirmed ahead of it`)
      last = Math.max(...b.map((id) => offsetOf.get(id) ?? -1))
    }
  }
  const deliveredAfterAck = deliveries.filter((d) => {
    const acked = ackedAt.get(d.id)
    return acked !== undefined && d.sentAt > acked
  }).map((d) => d.id)
  const delivered = new Set(deliveries.map((d) => d.id))
  const neverDelivered = stored.filter((id) => !delivered.has(id))
  return { seed: o.seed, faults, attempted, confirmed: allConfirmed.length, stored: stored.length, lost, duplicated, outOfOrder, deliveredAfterAck, neverDelivered, replicaMismatch, refusedAnswers }
}
