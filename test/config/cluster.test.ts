import { describe, expect, it } from 'vitest'
import { parseConfig, validateConfigText } from '../../src/config/index.js'

const problems = (text: string): readonly string[] => {
  const r = validateConfigText(text, { env: {} })
  return r.ok ? [] : r.problems
}

describe('the cluster section', () => {
  it('is absent by default: a single node', () => {
    expect(parseConfig('', { env: {} }).cluster).toBeNull()
  })

  it('takes a node id and fills the rest from the key table', () => {
    const c = parseConfig('cluster: { nodeId: n1, secret: 0123456789abcdef }\n', { env: {} }).cluster
    expect(c).toEqual({
      nodeId: 'n1',
      etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/sluice', leaseTtlMs: 5000, requestTimeoutMs: 2000 },
      minNodes: 1,
      advertise: { host: '127.0.0.1', internalPort: null },
      secret: '0123456789abcdef',
      replication: { host: '127.0.0.1', port: 7410, forwardTimeoutMs: 10_000, maxBodyBytes: 64 * 1024 * 1024, moveTimeoutMs: 600_000, factor: 1, minInSync: 1, replicaLagMaxMs: 10_000, uncleanElection: false, tls: null },
    })
  })

  it('reads endpoints as a list or one URL, keeping scheme, host and port', () => {
    const c = parseConfig('cluster: { nodeId: n1, secret: 0123456789abcdef, etcd: { endpoints: ["https://etcd-1:2379/", "http://10.0.0.2:2379", "https://etcd-1:2379"], prefix: /sluice/prod, leaseTtl: 10s } }\n', { env: {} }).cluster
    expect(c?.etcd).toEqual({ endpoints: ['https://etcd-1:2379', 'http://10.0.0.2:2379'], prefix: '/sluice/prod', leaseTtlMs: 10_000, requestTimeoutMs: 2000 })
    expect(parseConfig('cluster: { nodeId: n1, secret: 0123456789abcdef, etcd: { endpoints: "http://e:2379" } }\n', { env: {} }).cluster?.etcd.endpoints).toEqual(['http://e:2379'])
  })

  it('says what is wrong with each bad key, all at once', () => {
    const out = problems(`
cluster:
  nodeId: "../n1"
  etcd: { endpoints: ["etcd:2379", "http://u:p@e:2379", "http://e:2379/v3"], prefix: sluice/, leaseTtl: 1s }
`)
    expect(out.join('\n')).toMatch(/cluster\.nodeId.*not a valid name/)
    expect(out.join('\n')).toMatch(/cluster\.etcd\.endpoints.*"etcd:2379" is not an http:\/\/ or https:\/\/ URL/)
    expect(out.join('\n')).toMatch(/cluster\.etcd\.leaseTtl.*below the minimum of 2s/)
    expect(problems('cluster: { nodeId: n1, secret: 0123456789abcdef, etcd: { endpoints: [] } }\n').join('\n')).toMatch(/endpoints.*at least one URL/)
    expect(problems('cluster: { nodeId: n1, secret: 0123456789abcdef, replication: { factor: 2, minInSync: 3 } }\n')).toEqual([
      'cluster.replication.minInSync (line 1, col 87): is 3, more than cluster.replication.factor (2): no stream could take a publish',
    ])
    expect(problems('cluster: { nodeId: n1, secret: 0123456789abcdef, etcd: { endpoints: ["http://u:p@e:2379"] } }\n').join('\n')).toMatch(/no path, query or credentials/)
    expect(problems('cluster: { nodeId: n1, secret: 0123456789abcdef, etcd: { prefix: sluice/ } }\n').join('\n')).toMatch(/cluster\.etcd\.prefix.*must start with "\/", not end with "\/"/)
    expect(problems('cluster: { nodeId: n1, secret: 0123456789abcdef, etcd: { prefix: "/a//b" } }\n').join('\n')).toMatch(/no empty part/)
    expect(problems('cluster: { etcd: {} }\n').join('\n')).toMatch(/cluster\.nodeId/)
    expect(problems('cluster: { nodeId: n1 }\n').join('\n')).toMatch(/cluster\.secret.*required/)
    expect(problems('cluster: { nodeId: n1, secret: short }\n').join('\n')).toMatch(/cluster\.secret.*too short: at least 16/)
  })
})
