import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { ClusterView } from '../../src/cluster/index.js'
import { startChildServer, type ChildServer } from './child-server.js'
import { startEtcd, type EtcdServer } from './etcd.js'
import { waitFor } from './programs.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'
import { freePort } from '../../benchmarks/lib/proc.js'

export const clusterSecret = 'test-secret-0123456789'

/**
 * The server section of a test node: every port 0, the AMQP door on unless `amqp: false`, syslog
 * off unless given its exchange. The cluster section is added by startTestCluster.
 */
export function nodeServerYaml(dataDir: string, opts: { readonly amqp?: boolean; readonly syslogExchange?: string } = {}): string {
  return `
server:
  dataDir: ${JSON.stringify(dataDir)}
  http: { port: 0 }
  ndjson: { enabled: false }
  amqp: ${opts.amqp === false ? '{ enabled: false }' : '{ port: 0 }'}
  syslog: ${opts.syslogExchange === undefined ? '{ enabled: false }' : `{ port: 0, udp: false, exchange: ${opts.syslogExchange} }`}
  shutdownTimeout: 3s
`
}

export interface TestCluster {
  readonly root: string
  readonly etcd: EtcdServer
  /** In front of etcd for the nodes listed in `proxied`: cut it to partition them from etcd. */
  readonly proxy: TcpProxy
  /** With `perNodeProxies`: each node's own way to etcd, and the way into its internal port. */
  readonly etcdProxies: Map<string, TcpProxy>
  readonly internalProxies: Map<string, TcpProxy>
  /** Kills etcd and starts it again on its data dir (new ports; the proxies follow it). */
  restartEtcd(): Promise<void>
  readonly nodes: Map<string, ChildServer>
  /** Starts (or restarts, on its data dir) a node. */
  start(id: string): Promise<ChildServer>
  node(id: string): ChildServer
  status(id: string): Promise<ClusterView>
  /** Waits until every running node is a member, sees them all, and the streams are placed the same everywhere. */
  settled(streams: number): Promise<ClusterView>
  close(): Promise<void>
}

export interface TestClusterOptions {
  readonly ids: readonly string[]
  /** Nodes that reach etcd through `proxy`. */
  readonly proxied?: readonly string[]
  /** The configuration without its cluster section; `dataDir` is the node's. */
  readonly yaml: (id: string, dataDir: string) => string
  readonly leaseTtlMs?: number
  /** More keys of each node's `cluster.replication` mapping, as YAML flow entries (`tls: {...}`). */
  readonly replication?: (id: string) => string
  /**
   * Every node reaches etcd through a proxy of its own, and other nodes reach its internal port
   * through another (its advertised internalPort): a fault schedule cuts them one by one.
   */
  readonly perNodeProxies?: boolean
}

/**
 * A real etcd (Debian's etcd-server) and one Sluice process per node id (the built CLI), each on
 * its own data dir and ephemeral ports, on loopback.
 */
export async function startTestCluster(opts: TestClusterOptions): Promise<TestCluster> {
  const root = await mkdtemp(join(tmpdir(), 'sluice-cluster-'))
  let etcd = await startEtcd(root)
  const proxy = await startTcpProxy(etcd.port)
  const etcdProxies = new Map<string, TcpProxy>()
  const internalProxies = new Map<string, TcpProxy>()
  const internalPorts = new Map<string, number>()
  if (opts.perNodeProxies === true) {
    for (const id of opts.ids) {
      etcdProxies.set(id, await startTcpProxy(etcd.port))
      const port = await freePort()
      internalPorts.set(id, port)
      internalProxies.set(id, await startTcpProxy(port))
    }
  }
  const etcdEndpoint = (id: string): string => {
    const own = etcdProxies.get(id)
    if (own !== undefined) return `http://127.0.0.1:${own.port}`
    return opts.proxied?.includes(id) === true ? `http://127.0.0.1:${proxy.port}` : etcd.endpoint
  }
  const nodes = new Map<string, ChildServer>()
  const ttl = opts.leaseTtlMs ?? 2000
  const clusterYaml = (id: string): string => `
cluster:
  nodeId: ${id}
  minNodes: ${opts.ids.length}
  secret: ${clusterSecret}
  etcd: { endpoints: [${JSON.stringify(etcdEndpoint(id))}], prefix: /sluice/test, leaseTtl: ${ttl}ms, requestTimeout: 500ms }
  replication: { port: ${internalPorts.get(id) ?? 0}, forwardTimeout: 5s${opts.replication === undefined ? '' : `, ${opts.replication(id)}`} }
${internalProxies.has(id) ? `  advertise: { internalPort: ${internalProxies.get(id)!.port} }\n` : ''}`
  const start = async (id: string): Promise<ChildServer> => {
    const dir = join(root, id)
    await mkdir(dir, { recursive: true })
    const node = await startChildServer(dir, opts.yaml(id, join(dir, 'data')) + clusterYaml(id))
    nodes.set(id, node)
    return node
  }
  const node = (id: string): ChildServer => {
    const n = nodes.get(id)
    if (n === undefined) throw new Error(`node ${id} is not running`)
    return n
  }
  const status = async (id: string): Promise<ClusterView> => {
    const res = await fetch(`${node(id).url}/v1/cluster`)
    expect(res.status).toBe(200)
    return (await res.json()) as ClusterView
  }
  const homes = (s: ClusterView): string => JSON.stringify(s.placement.map((p) => [p.stream, p.node, p.epoch]))
  const cluster: TestCluster = {
    root,
    get etcd() {
      return etcd
    },
    proxy,
    etcdProxies,
    internalProxies,
    restartEtcd: async () => {
      await etcd.stop()
      etcd = await startEtcd(root)
      proxy.retarget(etcd.port)
      for (const p of etcdProxies.values()) p.retarget(etcd.port)
    },
    nodes,
    start,
    node,
    status,
    settled: (streams) =>
      waitFor(
        'the nodes agreeing on a full placement',
        async () => {
          const vs = await Promise.all([...nodes.keys()].map(status))
          const ok = vs.every((v) => v.state === 'member' && v.nodes.length === nodes.size && v.unplaced.length === 0 && v.placement.length === streams && v.controller !== null)
          return ok && vs.every((v) => homes(v) === homes(vs[0]!)) ? vs[0] : undefined
        },
        20_000,
        100,
      ),
    close: async () => {
      await Promise.all([...nodes.values()].map((n) => n.kill('SIGKILL')))
      await proxy.close()
      for (const p of [...etcdProxies.values(), ...internalProxies.values()]) await p.close()
      await etcd.stop()
      await rm(root, { recursive: true, force: true })
    },
  }
  try {
    await Promise.all(opts.ids.map(start))
  } catch (err) {
    await cluster.close().catch(() => undefined)
    throw err
  }
  return cluster
}
