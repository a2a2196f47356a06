import { spawnSync } from 'node:child_process'
import { createConnection, createServer } from 'node:net'

/**
 * The path of a third-party program a test needs, or a thrown error naming the Debian package
 * that provides it: a missing program fails the run loudly, it never skips.
 */
export function requireProgram(name: string, debianPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
  const path = r.stdout.trim()
  if (r.status !== 0 || path === '') {
    throw new Error(`${name} is not installed: install the Debian package "${debianPackage}" (.ci/run does this with apt-get)`)
  }
  return path
}

/** A free TCP port on 127.0.0.1, for programs that cannot report the port they picked. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port` (a program's input, say). */
export async function waitForTcpPort(what: string, port: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    what,
    () =>
      new Promise<true | undefined>((resolve) => {
        const probe = createConnection({ host: '127.0.0.1', port }, () => {
          probe.destroy()
          resolve(true)
        })
        probe.once('error', () => resolve(undefined))
      }),
    timeoutMs,
  )
}
