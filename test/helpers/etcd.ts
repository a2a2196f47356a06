import { startEtcd as startEtcdProgram, type EtcdServer } from '../../benchmarks/lib/etcd.js'
import { requireProgram } from './programs.js'

export type { EtcdServer }

/**
 * A real one-member etcd (Debian's etcd-server) on loopback, its data in `dir`. Resolves once
 * /health answers true. The implementation is shared with the cluster benchmark
 * (benchmarks/lib/etcd.ts); a missing etcd fails the test with the package to install.
 */
export async function startEtcd(dir: string): Promise<EtcdServer> {
  return startEtcdProgram(dir, { program: requireProgram('etcd', 'etcd-server') })
}
