import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { onTestFinished } from 'vitest'

/** Where scripts/syslog-ng.sh unpacks Debian's syslog-ng (it conflicts with rsyslog in apt). */
const root = resolve(import.meta.dirname, '../../.cache/syslog-ng')

export interface SyslogNg {
  readonly proc: ChildProcess
  /** What it has printed so far: for the message of a failed assertion. */
  stderr(): string
}

/**
 * Runs syslog-ng in the foreground on a configuration (without its `@version` line), its state in
 * `dir`, and stops it when the test ends. A missing copy fails the test, naming the script.
 */
export async function runSyslogNg(dir: string, config: string): Promise<SyslogNg> {
  const bin = join(root, 'usr/sbin/syslog-ng')
  if (!existsSync(bin)) throw new Error(`syslog-ng is not unpacked at ${root}: run scripts/syslog-ng.sh (.ci/run does)`)
  const conf = join(dir, 'syslog-ng.conf')
  await writeFile(conf, `@version: 3.38\n@define include-path "${join(root, 'usr/share/syslog-ng/include')}"\n${config}`)
  const proc = spawn(
    bin,
    [`--module-path=${join(root, 'usr/lib/syslog-ng/3.38')}`, `--persist-file=${join(dir, 'persist')}`, `--pidfile=${join(dir, 'sng.pid')}`, `--control=${join(dir, 'sng.ctl')}`, '--no-caps', '-F', '-e', '-f', conf],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LD_LIBRARY_PATH: `${join(root, 'usr/lib/syslog-ng')}:${join(root, 'usr/lib')}` } },
  )
  let stderr = ''
  proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  onTestFinished(async () => {
    proc.kill('SIGTERM')
    await exited
  })
  return { proc, stderr: () => stderr }
}
