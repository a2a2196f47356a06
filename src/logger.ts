import { pino, type Logger } from 'pino'

export type { Logger }

/** One structured logger for the process; lifecycle events only, never per event on the hot path. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'sluice' } }, destination ?? process.stdout)
}
