import { appendFileSync } from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url))

export interface ChildServer {
  readonly url: string
  /** Each TCP door's address as its "listener up" line gave it, by listener name (`syslog`, `amqp`, …). */
  readonly listeners: ReadonlyMap<string, string>
  readonly proc: ChildProcess
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * The real server in its own process (built CLI), for tests that SIGKILL it. Resolves once it
 * logs "ready", with the URL from its "http listener up" line.
 */
export async function startChildServer(dir: string, yaml: string): Promise<ChildServer> {
  const configPath = join(dir, 'sluice.yaml')
  await writeFile(configPath, yaml)
  return startChildServerWith(configPath)
}

/** The same, on a configuration file as it is, run from `cwd` with `env` added to the environment. */
export async function startChildServerWith(configPath: string, opts: { readonly cwd?: string; readonly env?: Readonly<Record<string, string>> } = {}): Promise<ChildServer> {
  const proc = spawn(process.execPath, [cli, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env: { ...process.env, ...opts.env } })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const listeners = new Map<string, string>()
  const url = await new Promise<string>((resolve, reject) => {
    let listening: string | undefined
    // The last lines before an early exit say why; a bare exit code does not.
    const recent: string[] = []
    const lines = createInterface({ input: proc.stdout! })
    lines.on('line', (line) => {
      recent.push(line)
      if (recent.length > 20) recent.shift()
      // SLUICE_CHILD_LOG=<dir>: every child's log kept, one file per process, to read after a failure.
      if (process.env.SLUICE_CHILD_LOG !== undefined) appendFileSync(join(process.env.SLUICE_CHILD_LOG, `child-${proc.pid ?? 0}.log`), `${line}\n`)
      let entry: { msg?: string; url?: string; listener?: string; address?: string }
      try {
        entry = JSON.parse(line) as { msg?: string; url?: string; listener?: string; address?: string }
      } catch {
        return
      }
      if (entry.msg === 'http listener up') listening = entry.url
      if (entry.msg === 'listener up' && entry.listener !== undefined && entry.address !== undefined) listeners.set(entry.listener, entry.address)
      if (entry.msg === 'ready' && listening !== undefined) resolve(listening)
    })
    // A failed start is said on stderr: kept with the log lines, and passed on as it was.
    proc.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk)
      recent.push(chunk.toString('utf8').trimEnd())
      if (recent.length > 20) recent.shift()
    })
    void exited.then((code) => reject(new Error(`server exited with ${code} before it was ready; its last log lines:\n${recent.join('\n')}`)))
  })
  return {
    url,
    listeners,
    proc,
    kill: (signal = 'SIGKILL') => {
      proc.kill(signal)
      return exited
    },
  }
}
