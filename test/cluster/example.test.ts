// The README's cluster section, as a user runs it: three nodes from examples/cluster/node.yaml,
// each given its id and ports through the environment, and an etcd. The ports are 0 (free ones)
// rather than the README's, so the test never collides with a server already running.

import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterView } from '../../src/cluster/index.js'
import { startChildServerWith, type ChildServer } from '../helpers/child-server.js'
import { repoRoot, runCli } from '../helpers/cli.js'
import { startEtcd, type EtcdServer } from '../helpers/etcd.js'
import { waitFor } from '../helpers/programs.js'

describe('the example cluster (README, examples/cluster/node.yaml)', () => {
  let root: string
  let etcd: EtcdServer
  const nodes = new Map<string, ChildServer>()

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sluice-example-cluster-'))
    etcd = await startEtcd(root)
    const secret = 'example-secret-0123456789abcdef'
    await Promise.all(
      ['n1', 'n2', 'n3'].map(async (id) => {
        // Port 0 everywhere: each node picks free ports and says which in its log and its node record.
        const env = { SLUICE_NODE: id, SLUICE_HTTP_PORT: '0', SLUICE_AMQP_PORT: '0', SLUICE_INTERNAL_PORT: '0', SLUICE_CLUSTER_SECRET: secret, SLUICE_ETCD: etcd.endpoint }
        nodes.set(id, await startChildServerWith(join(repoRoot, 'examples/cluster/node.yaml'), { cwd: root, env }))
      }),
    )
  }, 60_000)

  afterAll(async () => {
    await Promise.all([...nodes.values()].map((n) => n.kill('SIGKILL')))
    await etcd?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('places one stream per node, stores a publish to n2 at the homes, and `cluster status` shows it', async () => {
    // Every node must have seen the placement: until then a publish it takes is refused (503, retryable).
    const view = await waitFor(
      'three streams placed, as every node sees it',
      async () => {
        const vs = await Promise.all([...nodes.values()].map(async (n) => (await (await fetch(`${n.url}/v1/cluster`)).json()) as ClusterView))
        return vs.every((v) => v.placement.length === 3 && v.nodes.length === 3) ? vs[0] : undefined
      },
      20_000,
      100,
    )
    expect(view.placement.map((p) => p.stream)).toEqual(['app-logs', 'audit', 'errors'])
    expect(new Set(view.placement.map((p) => p.node)).size).toBe(3)

    const res = await fetch(`${nodes.get('n2')!.url}/v1/exchanges/logs/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"service":"web","level":"error","msg":"timeout"}' })
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, unroutable: 0 })
    for (const stream of ['app-logs', 'errors']) {
      const home = view.placement.find((p) => p.stream === stream)!.node
      const read = (await (await fetch(`${nodes.get(home)!.url}/v1/streams/${stream}/events`)).json()) as { events: Array<{ body: { msg: string } }> }
      expect(read.events.map((e) => e.body.msg)).toEqual(['timeout'])
    }

    const out = await runCli(['cluster', 'status', '--url', nodes.get('n1')!.url])
    expect(out.code).toBe(0)
    expect(out.stdout).toMatch(/^node {8}n1 \(member\)$/m)
    expect(out.stdout).toMatch(/^controller {2}n\d \(epoch \d+, since /m)
    for (const id of ['n1', 'n2', 'n3']) expect(out.stdout).toMatch(new RegExp(`^${id} +127\\.0\\.0\\.1 +\\d+`, 'm'))
    for (const p of view.placement) expect(out.stdout).toMatch(new RegExp(`^${p.stream} +${p.node} +1 `, 'm'))
    // Each node's data is under ./data/<node> of the directory it runs in.
    for (const id of ['n1', 'n2', 'n3']) expect(existsSync(join(root, 'data', id, 'streams'))).toBe(true)
  })
})
