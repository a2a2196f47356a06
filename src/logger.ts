import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

/** json: one object a line, for collectors; pretty: one readable line a record, for a person at a terminal. */
export type LogFormat = 'json' | 'pretty'

/** One structured logger for the process; lifecycle events only, never per event on the hot path. */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format: LogFormat = 'json'): Logger {
  const options = { level, base: { service: 'sluice' } }
  if (format === 'json') return pino(options, destination ?? process.stdout)
  // In-process and synchronous, not a worker-thread transport: the last lines before an exit
  // (a failed start, "stopped") are written before the process ends.
  const out = destination ?? process.stdout
  const stream = pretty({
    destination: out,
    sync: true,
    colorize: (out as { isTTY?: boolean }).isTTY === true && pretty.isColorSupported,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    singleLine: true,
  })
  return pino(options, stream)
}
