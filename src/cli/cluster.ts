import type { ClusterView, MoveResult } from '../cluster/index.js'
import { CliError, parseCommand, renderCommandHelp, type CommandSpec } from './args.js'
import { clientHelp, clientOptions, ServerClient } from './client.js'

export const clusterSpec: CommandSpec = {
  name: 'cluster',
  summary: "show a cluster's nodes, controller and stream placement, or move a stream to another node",
  positionals: [
    { name: 'ACTION', required: true, doc: 'status | move' },
    { name: 'STREAM', required: false, doc: 'move: the stream to move' },
    { name: 'NODE', required: false, doc: 'move: the nodeId to move it to' },
  ],
  options: {
    json: { type: 'boolean', doc: 'print the answer as JSON' },
    ...clientOptions,
  },
  description: `status asks one node (any node) for its view of the cluster: its own membership and lease,
the elected controller and its epoch, every node with a live lease, and the home of each stream.
A node cut off from etcd shows state "fenced": it refuses publishes until it rejoins. A single
node (no cluster section) answers "not a cluster". docs/cluster.md explains each field.

move STREAM NODE moves a stream, with its groups' state and its remembered event ids, to another
node; any node takes the request and the controller runs it. Publishes to the stream wait while
it moves (they do not fail); its consumers are cancelled and subscribe again on the new node, and
what they held unacked is redelivered there. It prints what was copied once the stream lives on
NODE. A move that fails is called off and changes nothing; it can be tried again.

${clientHelp}`,
  examples: ['sluice cluster status', 'sluice cluster status --url http://10.0.0.2:7400 --json', 'sluice cluster move app-logs node-b'],
}

type Status = ClusterView | { readonly enabled: false }

export async function cluster(args: readonly string[]): Promise<number> {
  const p = parseCommand(clusterSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(clusterSpec))
    return 0
  }
  const action = p.positionals[0]!
  if (action === 'move') return move(p.positionals.slice(1), p.values.json === true, new ServerClient(p.values))
  if (action !== 'status') throw new CliError(`unknown action "${action}"; use: sluice cluster status | sluice cluster move STREAM NODE`)
  if (p.positionals.length > 1) throw new CliError('sluice cluster status takes no more arguments')
  const client = new ServerClient(p.values)
  const res = await client.request('GET', '/v1/cluster')
  if (res.status !== 200) throw await client.failure(res)
  const status = (await res.json()) as Status
  process.stdout.write(p.values.json === true ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status))
  return 0
}

async function move(args: readonly (string | undefined)[], json: boolean, client: ServerClient): Promise<number> {
  const [stream, node] = args
  if (stream === undefined || node === undefined) throw new CliError('usage: sluice cluster move STREAM NODE')
  const res = await client.request('POST', `/v1/cluster/streams/${encodeURIComponent(stream)}/move`, { body: JSON.stringify({ node }), contentType: 'application/json' })
  if (res.status !== 200) throw await client.failure(res)
  const r = (await res.json()) as MoveResult
  process.stdout.write(
    json
      ? `${JSON.stringify(r, null, 2)}\n`
      : `moved ${r.stream} from ${r.from} to ${r.to} (placement epoch ${r.epoch}): ${r.events} events (${(r.bytes / 1048576).toFixed(1)} MiB), ${r.groups} groups, ${r.ids} remembered ids in ${(r.durationMs / 1000).toFixed(1)} s\n`,
  )
  return 0
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n'
}

export function renderStatus(s: Status): string {
  if (!s.enabled) return 'not a cluster: this server runs as a single node (no cluster section in its configuration)\n'
  const lease = s.lease.remainingMs === null ? 'none' : `${s.lease.id} (${(s.lease.remainingMs / 1000).toFixed(1)} s left of ${s.lease.ttlMs / 1000} s)`
  const controller = s.controller === null ? 'none elected' : `${s.controller.node} (epoch ${s.controller.epoch}, since ${s.controller.since})`
  const out = [`node        ${s.node} (${s.state})`, `lease       ${lease}`, `controller  ${controller}`, `etcd        ${s.etcd.endpoints.join(', ')} ${s.etcd.prefix} (revision ${s.etcd.revision})`, '']
  const nodes = [['NODE', 'HOST', 'HTTP', 'AMQP', 'INTERNAL', 'STREAMS', 'STORED', 'FORWARDED TO', 'VERSION', 'STARTED']]
  for (const n of s.nodes) {
    const f = s.forwarding[n.id]
    const forwarded = f === undefined ? '-' : `${f.events} events in ${f.ok} appends${f.error > 0 ? `, ${f.error} failed` : ''}`
    nodes.push([n.id, n.host, String(n.httpPort ?? '-'), String(n.amqpPort ?? '-'), String(n.internalPort), String(n.streams), `${(n.storedBytes / 1048576).toFixed(1)} MiB`, forwarded, n.version, n.startedAt])
  }
  const placement = [['STREAM', 'NODE', 'EPOCH', 'SINCE']]
  for (const p of s.placement) placement.push([p.stream, p.live ? p.node : `${p.node} (down)`, String(p.epoch), p.since])
  const waiting = s.nodes.length < s.minNodes ? `waiting for ${s.minNodes} nodes (cluster.minNodes)` : 'waiting for the controller'
  for (const stream of s.unplaced) placement.push([stream, '-', '-', waiting])
  return `${out.join('\n')}\n${table(nodes)}\n${table(placement)}`
}
