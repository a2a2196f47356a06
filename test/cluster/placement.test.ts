import { describe, expect, it } from 'vitest'
import { parseNode, parsePlacement } from '../../src/cluster/layout.js'
import { chooseFollowers, placeStreams } from '../../src/cluster/placement.js'

const node = (id: string, storedBytes = 0) => ({ id, storedBytes })

describe('placeStreams', () => {
  it('spreads new streams by count, in name order, lowest id first on a tie', () => {
    const out = placeStreams(['c', 'a', 'b', 'd'], [node('n2'), node('n1'), node('n3')], new Map())
    expect([...out]).toEqual([
      ['a', 'n1'],
      ['b', 'n2'],
      ['c', 'n3'],
      ['d', 'n1'],
    ])
  })

  it('counts the streams already placed, and breaks a count tie by stored bytes', () => {
    const placed = new Map([
      ['x', 'n1'],
      ['y', 'n1'],
      ['z', 'n2'],
    ])
    const out = placeStreams(['a', 'b', 'c'], [node('n1'), node('n2', 500), node('n3', 100)], placed)
    // n3 has none; then n3 (1, 100 bytes) ties n2 (1, 500 bytes) on count and wins on bytes.
    expect([...out]).toEqual([
      ['a', 'n3'],
      ['b', 'n3'],
      ['c', 'n2'],
    ])
  })

  it('places nothing without a live node, and ignores placements on nodes that are gone', () => {
    expect(placeStreams(['a'], [], new Map()).size).toBe(0)
    const out = placeStreams(['a', 'b'], [node('n1'), node('n2')], new Map([['x', 'gone']]))
    expect([...out.values()]).toEqual(['n1', 'n2'])
  })
})

describe('chooseFollowers', () => {
  it('takes the nodes holding the fewest copies, then the lowest id, and counts its choice', () => {
    const copies = new Map([['n1', 3], ['n2', 1], ['n3', 1], ['n4', 0]])
    expect(chooseFollowers('n1', [], ['n1', 'n2', 'n3', 'n4'], 3, copies)).toEqual(['n4', 'n2'])
    expect(copies.get('n4')).toBe(1)
    expect(copies.get('n2')).toBe(2)
    // Followers already placed stay; only what is missing is added; never more than there are nodes.
    expect(chooseFollowers('n1', ['n1', 'n3'], ['n1', 'n2', 'n3'], 3, new Map())).toEqual(['n3', 'n2'])
    expect(chooseFollowers('n1', [], ['n1', 'n2'], 3, new Map())).toEqual(['n2'])
    expect(chooseFollowers('n1', [], ['n1', 'n2'], 1, new Map())).toEqual([])
  })
})

describe('cluster records from etcd', () => {
  it('a record that is not what it claims is refused, not trusted', () => {
    // Written before replication: the home is the one replica, in sync.
    expect(parsePlacement('{"node":"n1","epoch":1,"controllerEpoch":7,"since":"2026-01-01T00:00:00Z"}')).toEqual({ node: 'n1', epoch: 1, controllerEpoch: 7, since: '2026-01-01T00:00:00Z', replicas: ['n1'], isr: ['n1'] })
    const replicated = { node: 'n2', epoch: 3, controllerEpoch: 7, since: 't', replicas: ['n2', 'n1', 'n3'], isr: ['n2', 'n3'] }
    expect(parsePlacement(JSON.stringify(replicated))).toEqual(replicated)
    // The leader must come first in both, and the in-sync set be of the replicas.
    expect(parsePlacement(JSON.stringify({ ...replicated, replicas: ['n1', 'n2'] }))).toBeUndefined()
    expect(parsePlacement(JSON.stringify({ ...replicated, isr: ['n2', 'n9'] }))).toBeUndefined()
    expect(parsePlacement('{"node":"n1","epoch":0,"controllerEpoch":7,"since":"x"}')).toBeUndefined()
    expect(parsePlacement('not json')).toBeUndefined()
    expect(parsePlacement('[1]')).toBeUndefined()
    const n = { id: 'n1', host: '10.0.0.1', httpPort: 7400, httpTls: false, amqpPort: null, internalPort: 7410, lease: '42', startedAt: 't', version: '0.1.0', storedBytes: 10 }
    expect(parseNode(JSON.stringify(n))).toEqual(n)
    expect(parseNode(JSON.stringify({ ...n, httpPort: 70000 }))).toBeUndefined()
    // An older record without storedBytes reads as 0.
    expect(parseNode(JSON.stringify({ ...n, storedBytes: undefined }))?.storedBytes).toBe(0)
  })
})

describe('forwarded records on the wire', () => {
  it('round-trip every field, and a cut or padded buffer is refused', async () => {
    const { encodeRecords, decodeRecords, WireError } = await import('../../src/cluster/wire.js')
    const records = [
      { timestamp: 1_700_000_000_123, key: 'api.info', body: Buffer.from('{"a":1}'), json: true, id: 'x-1', exchange: 'logs', headers: Buffer.from('{"h":"v"}') },
      { timestamp: 0, key: '', body: Buffer.alloc(0), json: false, id: undefined, exchange: 'logs', headers: undefined },
      { timestamp: 5, key: 'ü', body: Buffer.from([0, 255]), json: false, id: 'ид', exchange: 'logs', headers: undefined },
    ]
    const buf = encodeRecords(records)
    const back = decodeRecords(buf, 'logs', 10)
    expect(back.map((r) => ({ ...r, body: Buffer.from(r.body).toString('hex'), headers: r.headers === undefined ? undefined : Buffer.from(r.headers).toString() }))).toEqual(
      records.map((r) => ({ ...r, body: r.body.toString('hex'), headers: r.headers?.toString() })),
    )
    for (let cut = 0; cut < buf.length; cut++) expect(() => decodeRecords(buf.subarray(0, cut), 'logs', 10)).toThrow(WireError)
    expect(() => decodeRecords(Buffer.concat([buf, Buffer.from([0])]), 'logs', 10)).toThrow(/1 bytes after the last record/)
    expect(() => decodeRecords(buf, 'logs', 2)).toThrow(/3 records, over the 2/)
  })
})
