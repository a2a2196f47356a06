// The internal port with mutual TLS (cluster.replication.tls): forwarded publishes, AMQP consumers
// served from the home and a stream move all cross it, a peer without a certificate from the
// cluster's CA is refused in the handshake, and SIGHUP rotates the certificates and the CA.
// Certificates made with openssl; real etcd, two Sluice processes, amqplib; loopback only.

import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request as httpsRequest } from 'node:https'
import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clusterSecret, nodeServerYaml, startTestCluster, type TestCluster } from '../helpers/cluster.js'
import { makePki, type Pair, type Pki } from '../helpers/pki.js'
import { waitFor } from '../helpers/programs.js'

const yaml = (_id: string, dataDir: string): string => `${nodeServerYaml(dataDir)}exchanges:
  logs: { type: direct, dedup: id }
streams:
  s1: {}
  s2: {}
bindings:
  - { exchange: logs, stream: s1, key: a }
  - { exchange: logs, stream: s2, key: b }
groups:
  g1: { stream: s1, ackTimeout: 30s }
`

/** POST to a node's internal port over TLS with `pair` as the client certificate (or none). */
function internal(port: number, ca: string, pair: Pair | undefined): Promise<number | string> {
  return Promise.all([readFile(ca), pair === undefined ? undefined : readFile(pair.cert), pair === undefined ? undefined : readFile(pair.key)]).then(
    ([caPem, cert, key]) =>
      new Promise((resolve) => {
        const r = httpsRequest({ host: '127.0.0.1', port, method: 'POST', path: '/internal/v1/nothing', ca: caPem, cert, key, headers: { authorization: `Bearer ${clusterSecret}`, 'content-length': 0 } }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
        r.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
        r.end()
      }),
  )
}

describe('the internal port with mutual TLS', () => {
  let cluster: TestCluster
  let pki: Pki
  let pkiDir: string
  const pairs = new Map<string, Pair>()
  let home: string
  let other: string

  beforeAll(async () => {
    pkiDir = await mkdtemp(join(tmpdir(), 'sluice-pki-'))
    pki = await makePki(pkiDir)
    for (const id of ['n1', 'n2']) pairs.set(id, await pki.issue(id, `/CN=${id}`, 'both'))
    cluster = await startTestCluster({
      ids: ['n1', 'n2'],
      yaml,
      replication: (id) => `tls: { cert: ${JSON.stringify(pairs.get(id)!.cert)}, key: ${JSON.stringify(pairs.get(id)!.key)}, ca: ${JSON.stringify(pki.ca)} }`,
    })
    const view = await cluster.settled(2)
    home = view.placement.find((p) => p.stream === 's1')!.node
    other = home === 'n1' ? 'n2' : 'n1'
  }, 60_000)

  /** Publishes `n` events to s1 through `via`, then consumes g1 over AMQP through `via`: every id once, in order. */
  const publishThenConsume = async (via: string, prefix: string, n: number): Promise<string[]> => {
    const events = Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}` }))
    const res = await fetch(`${cluster.node(via).url}/v1/exchanges/logs/publish?routingKey=a`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })
    expect(await res.json()).toEqual({ accepted: n, duplicates: 0, unroutable: 0 })
    const amqpPort = (await cluster.status(via)).nodes.find((node) => node.id === via)!.amqpPort!
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpPort}`)
    try {
      const ch = await conn.createChannel()
      const got: string[] = []
      await ch.consume('g1', (m) => {
        if (m === null) return
        got.push(String(m.properties.messageId))
        ch.ack(m)
      })
      await waitFor(`${n} deliveries over AMQP through ${via}`, async () => (got.length === n ? true : undefined), 10_000)
      expect(got).toEqual(events.map((e) => e.id))
      return got
    } finally {
      await conn.close()
    }
  }

  afterAll(async () => {
    await cluster?.close()
    await rm(pkiDir, { recursive: true, force: true })
  })

  it('refuses peers without a certificate from the cluster CA, and plain HTTP', async () => {
    const port = (await cluster.status(home)).internalPort
    expect(await internal(port, pki.ca, pairs.get(other))).toBe(404) // in: authorized, unknown path
    expect(await internal(port, pki.ca, pki.rogue)).not.toBe(404)
    expect(await internal(port, pki.ca, undefined)).not.toBe(404)
    const plain = await fetch(`http://127.0.0.1:${port}/internal/v1/nothing`, { method: 'POST', headers: { authorization: `Bearer ${clusterSecret}` } }).then(
      (r) => r.status,
      () => 'refused',
    )
    expect(plain).not.toBe(404)
  })

  it('forwards publishes, serves an AMQP consumer from the home, and moves a stream across it', async () => {
    const ids = await publishThenConsume(other, 't', 50)

    const moved = await fetch(`${cluster.node(other).url}/v1/cluster/streams/s1/move`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: other }) })
    const answer = await moved.text()
    expect(moved.status, answer).toBe(200)
    expect(JSON.parse(answer)).toMatchObject({ from: home, to: other, events: 50, groups: 1 })
    const stored = await fetch(`${cluster.node(other).url}/v1/streams/s1/events?from=0&limit=100`)
    expect(((await stored.json()) as { events: Array<{ id: string }> }).events.map((e) => e.id)).toEqual(ids)
  }, 60_000)

  it('takes a new CA and certificates on SIGHUP: the old ones are refused, and forwarding and a proxied consumer go on over new connections', async () => {
    // Rotated in place, to certificates of another CA.
    const next = await makePki(await mkdir(join(pkiDir, 'next'), { recursive: true }).then(() => join(pkiDir, 'next')))
    const old = new Map([...pairs].map(([id, p]) => [id, { cert: `${p.cert}.old`, key: `${p.key}.old` }]))
    for (const [id, p] of pairs) {
      const fresh = await next.issue(id, `/CN=${id}`, 'both')
      await copyFile(p.cert, old.get(id)!.cert)
      await copyFile(p.key, old.get(id)!.key)
      await copyFile(fresh.cert, p.cert)
      await copyFile(fresh.key, p.key)
    }
    const oldCa = join(pkiDir, 'ca.old.pem')
    await copyFile(pki.ca, oldCa)
    await copyFile(next.ca, pki.ca)
    const ports = new Map<string, number>()
    for (const id of ['n1', 'n2']) {
      ports.set(id, (await cluster.status(id)).internalPort)
      cluster.node(id).proc.kill('SIGHUP')
    }
    for (const id of ['n1', 'n2']) {
      const peer = id === 'n1' ? 'n2' : 'n1'
      await waitFor(`${id} serving the new certificate`, async () => ((await internal(ports.get(id)!, next.ca, pairs.get(peer))) === 404 ? true : undefined), 10_000, 50)
      // The old CA's certificates are refused now, and the old server certificate is gone.
      expect(await internal(ports.get(id)!, next.ca, old.get(peer))).not.toBe(404)
      expect(await internal(ports.get(id)!, oldCa, pairs.get(peer))).not.toBe(404)
    }

    // s1 lives at `other` since the move: a publish through `home` is forwarded, a consumer on `home` proxied.
    await publishThenConsume(home, 'r', 20)
  }, 60_000)
})
