import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { freePort, requireProgram, waitFor } from './programs.js'

export interface EtcdServer {
  /** The client URL, e.g. http://127.0.0.1:41234. */
  readonly endpoint: string
  readonly port: number
  stop(): Promise<void>
}

/**
 * A real one-member etcd (Debian's etcd-server) on loopback, its data in `dir`. Resolves once
 * /health answers true.
 */
export async function startEtcd(dir: string): Promise<EtcdServer> {
  const etcd = requireProgram('etcd', 'etcd-server')
  const [port, peer] = [await freePort(), await freePort()]
  const endpoint = `http://127.0.0.1:${port}`
  const peerUrl = `http://127.0.0.1:${peer}`
  const proc = spawn(
    etcd,
    ['--name', 'test', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint, '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `test=${peerUrl}`, '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  proc.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  try {
    await waitFor(
      'etcd /health',
      async () => {
        if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${stderr}`)
        const res = await fetch(`${endpoint}/health`)
        const body = (await res.json()) as { health?: string }
        return body.health === 'true' ? true : undefined
      },
      15_000,
      100,
    )
  } catch (err) {
    proc.kill('SIGKILL')
    throw new Error(`etcd did not start: ${(err as Error).message}; stderr: ${stderr}`)
  }
  return {
    endpoint,
    port,
    stop: async () => {
      proc.kill('SIGTERM')
      await exited
    },
  }
}
