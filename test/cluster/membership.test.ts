// Cluster mode with real parts: an etcd from Debian's etcd-server and three Sluice nodes, each its
// own process (the built CLI), on loopback. Node n3 reaches etcd through a TCP proxy the test can
// cut, as a network partition would.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView as ClusterStatus } from '../../src/cluster/index.js'
import type { ChildServer } from '../helpers/child-server.js'
import { nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/programs.js'

const leaseTtlMs = 2000
const streams = ['s1', 's2', 's3', 's4', 's5', 's6']

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir, { amqp: false })}exchanges:
  logs: { type: fanout }
streams:
${streams.map((s) => `  ${s}: {}`).join('\n')}
bindings:
  - { exchange: logs, stream: s1 }
`

async function status(node: ChildServer): Promise<ClusterStatus> {
  const res = await fetch(`${node.url}/v1/cluster`)
  expect(res.status).toBe(200)
  return (await res.json()) as ClusterStatus
}

const publish = (node: ChildServer): Promise<Response> =>
  fetch(`${node.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: [{ msg: 'hello' }] }) })

/** The placement as stream → node, for comparing views. */
const homes = (s: ClusterStatus): Record<string, string> => Object.fromEntries(s.placement.map((p) => [p.stream, `${p.node}@${p.epoch}`]))

describe('cluster membership, controller and placement through a real etcd', () => {
  let cluster: TestCluster
  // The cluster's own map of running nodes: a node killed here is forgotten there too.
  let nodes: Map<string, ChildServer>
  const start = (id: string): Promise<ChildServer> => cluster.start(id)

  beforeAll(async () => {
    cluster = await startTestCluster({ ids: ['n1', 'n2', 'n3'], proxied: ['n3'], yaml, leaseTtlMs })
    nodes = cluster.nodes
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
  })

  it('every node sees the three members, one controller, and each stream placed once, spread evenly', async () => {
    const views = await waitFor(
      'three nodes agreeing on a full placement',
      async () => {
        const vs = await Promise.all([...nodes.values()].map(status))
        const ok = vs.every((v) => v.state === 'member' && v.nodes.length === 3 && v.unplaced.length === 0 && v.placement.length === streams.length && v.controller !== null)
        return ok && vs.every((v) => JSON.stringify(homes(v)) === JSON.stringify(homes(vs[0]!))) ? vs : undefined
      },
      15_000,
      100,
    )
    const v = views[0]!
    expect(v.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3'])
    expect(v.placement.map((p) => p.stream)).toEqual(streams)
    // Two streams each: placement spreads by stream count.
    expect(v.nodes.map((n) => n.streams)).toEqual([2, 2, 2])
    expect(v.placement.every((p) => p.epoch === 1 && p.controllerEpoch === v.controller!.epoch && p.live)).toBe(true)
    // One controller, which says so of itself; the others name the same node and epoch.
    expect(views.filter((x) => x.controller!.self)).toHaveLength(1)
    expect(new Set(views.map((x) => `${x.controller!.node}@${x.controller!.epoch}`)).size).toBe(1)
    // Each node record carries the port clients reach it on.
    for (const n of v.nodes) expect(`http://127.0.0.1:${n.httpPort}`).toBe(nodes.get(n.id)!.url)
  })

  it('the controller SIGKILLed: another node is elected within leaseTtl + 1 s and placement is unchanged', async () => {
    const before = await status(nodes.get('n1')!)
    const old = before.controller!
    const survivor = [...nodes.keys()].find((id) => id !== old.node)!
    const t0 = performance.now()
    await nodes.get(old.node)!.kill('SIGKILL')
    nodes.delete(old.node)
    const after = await waitFor(
      'a new controller',
      async () => {
        const s = await status(nodes.get(survivor)!)
        return s.controller !== null && s.controller.node !== old.node ? s : undefined
      },
      leaseTtlMs + 5000,
      50,
    )
    const tookMs = performance.now() - t0
    expect(tookMs).toBeLessThan(leaseTtlMs + 1000)
    expect(after.controller!.epoch).toBeGreaterThan(old.epoch)
    expect(homes(after)).toEqual(homes(before))
    // The dead node's streams keep their home; only it holds their data.
    expect(after.placement.filter((p) => p.node === old.node).every((p) => !p.live)).toBe(true)
    expect(after.nodes.map((n) => n.id)).not.toContain(old.node)

    // Back under the same nodeId: it rejoins (its old record is gone with its lease), as a follower of the new controller.
    await start(old.node)
    const rejoined = await waitFor('the node back', async () => {
      const s = await status(nodes.get(old.node)!)
      return s.state === 'member' && s.nodes.length === 3 ? s : undefined
    }, 10_000, 100)
    expect(rejoined.controller!.node).toBe(after.controller!.node)
    expect(rejoined.controller!.self).toBe(false)
    expect(homes(rejoined)).toEqual(homes(before))
    expect(rejoined.placement.every((p) => p.live)).toBe(true)
  })

  it('a node cut off from etcd fences itself: 503 with Retry-After on publish; it rejoins when etcd is back', async () => {
    const n3 = nodes.get('n3')!
    expect((await publish(n3)).status).toBe(200)
    cluster.proxy.cut()
    const t0 = performance.now()
    const fenced = await waitFor('n3 fenced', async () => {
      const s = await status(n3)
      return s.state === 'fenced' ? s : undefined
    }, leaseTtlMs + 5000, 50)
    // It fences before its lease can have ended at etcd, never after.
    expect(performance.now() - t0).toBeLessThan(leaseTtlMs + 500)
    expect(fenced.lease.id).toBeNull()
    const refused = await publish(n3)
    expect(refused.status).toBe(503)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    const body = (await refused.json()) as { error: { code: string; details: { alarms: string[] } } }
    expect(body.error.details.alarms).toEqual(['cluster'])
    const metrics = await (await fetch(`${n3.url}/metrics`)).text()
    expect(metrics).toMatch(/^sluice_cluster_member\{state="fenced"\} 1$/m)
    expect(metrics).toMatch(/^sluice_alarm\{alarm="cluster"\} 1$/m)
    // The others see its lease end.
    await waitFor('n3 gone from n1', async () => ((await status(nodes.get('n1')!)).nodes.some((n) => n.id === 'n3') ? undefined : true), leaseTtlMs + 5000, 100)

    cluster.proxy.restore()
    const back = await waitFor('n3 a member again', async () => {
      const s = await status(n3)
      return s.state === 'member' && s.nodes.length === 3 ? s : undefined
    }, 15_000, 100)
    expect(back.lease.id).not.toBe(fenced.lease.id)
    expect((await publish(n3)).status).toBe(200)
    const after = await (await fetch(`${n3.url}/metrics`)).text()
    expect(after).toMatch(/^sluice_cluster_fences_total 1$/m)
    expect(after).toMatch(/^sluice_alarm\{alarm="cluster"\} 0$/m)
  })

  it('a node stopped cleanly leaves at once: its lease is revoked, not left to expire', async () => {
    const n2 = nodes.get('n2')!
    const t0 = performance.now()
    await n2.kill('SIGTERM')
    nodes.delete('n2')
    await waitFor('n2 gone from n1', async () => ((await status(nodes.get('n1')!)).nodes.some((n) => n.id === 'n2') ? undefined : true), leaseTtlMs, 20)
    expect(performance.now() - t0).toBeLessThan(leaseTtlMs)
  })
})
