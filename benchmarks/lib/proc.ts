// What benchmarks ask of the machine about their processes: a free loopback port for a child
// server, and the CPU time a process has used (from /proc, Linux only).

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** A port free on 127.0.0.1 now (another process may take it before the caller binds it). */
export function freePort(): Promise<number> {
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

/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
export const clockTicks = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(r.stdout?.trim())
  return Number.isFinite(n) && n > 0 ? n : 100
})()

/** User plus system CPU seconds a process has used; NaN once it is gone or off Linux. */
export function procCpuS(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces: the fields are counted from its closing parenthesis.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // After "pid (comm) " the state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (Number(f[11]) + Number(f[12])) / clockTicks
  } catch {
    return Number.NaN
  }
}

/** VmRSS and VmHWM (peak) of a process in kB; NaN once it is gone or off Linux. */
export function procMemKb(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN)
    return { rss: get('VmRSS'), hwm: get('VmHWM') }
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN }
  }
}
