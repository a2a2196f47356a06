// A real one-member etcd on loopback, for benchmarks and tests of cluster mode: Debian's
// etcd-server package provides the `etcd` binary. Its client and peer ports are free ones, its data
// a directory under the caller's, so several can run side by side.

import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { freePort } from './proc.js'

export interface EtcdServer {
  /** The client URL, e.g. http://127.0.0.1:41234. */
  readonly endpoint: string
  readonly port: number
  readonly pid: number
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>
  /** SIGKILL, without waiting: for exit handlers, which cannot await. */
  kill(): void
}

export interface EtcdOptions {
  /** The etcd binary; by default the one on PATH, or a thrown error naming the Debian package. */
  readonly program?: string
  readonly startTimeoutMs?: number
}

const stopTimeoutMs = 5_000

/** The path of `etcd` on PATH, or a thrown error that says which Debian package installs it. */
export function etcdProgram(): string {
  const r = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' })
  const path = r.stdout?.trim() ?? ''
  if (r.status !== 0 || path === '') throw new Error('etcd is not installed: install the Debian package "etcd-server"')
  return path
}

/**
 * Starts etcd with its data in `<dir>/etcd`; resolves once /health answers true. etcd cannot
 * pick its own ports, so free ones are picked first; if another program takes one in between and
 * etcd exits, it is tried again on others, three times at most.
 */
export async function startEtcd(dir: string, opts: EtcdOptions = {}): Promise<EtcdServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce(dir, opts)
    } catch (err) {
      if (attempt >= 3 || !(err instanceof EtcdExited)) throw err
    }
  }
}

class EtcdExited extends Error {}

async function startEtcdOnce(dir: string, opts: EtcdOptions): Promise<EtcdServer> {
  const program = opts.program ?? etcdProgram()
  const timeoutMs = opts.startTimeoutMs ?? 15_000
  const [port, peer] = [await freePort(), await freePort()]
  const endpoint = `http://127.0.0.1:${port}`
  const peerUrl = `http://127.0.0.1:${peer}`
  const proc = spawn(
    program,
    ['--name', 'sluice', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint, '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `sluice=${peerUrl}`, '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  if (proc.pid === undefined) throw new Error(`could not start ${program}`)
  const pid = proc.pid
  let stderr = ''
  proc.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const alive = (): boolean => proc.exitCode === null && proc.signalCode === null

  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  for (;;) {
    if (!alive()) throw new EtcdExited(`etcd did not start: it exited with ${proc.exitCode ?? proc.signalCode}; stderr: ${stderr}`)
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) })
      const body = (await res.json()) as { health?: string }
      if (body.health === 'true') break
      last = JSON.stringify(body)
    } catch (err) {
      last = (err as Error).message
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`etcd did not start: /health not true after ${timeoutMs} ms (last: ${last}); stderr: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }

  return {
    endpoint,
    port,
    pid,
    stop: async () => {
      if (!alive()) return
      proc.kill('SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs)
      await exited
      clearTimeout(t)
    },
    kill: () => {
      if (alive()) proc.kill('SIGKILL')
    },
  }
}
