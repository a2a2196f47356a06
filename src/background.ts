/**
 * Failures of work nobody awaits: timer ticks, event callbacks, fire-and-forget promises. Such a
 * throw would reach the process as an uncaught exception (or unhandled rejection) and end it, so
 * every one is caught, counted here by task, and handed to a reporter (usually the logger).
 * /metrics exports the counts as sluice_background_errors_total{task}. A plain map: no
 * dependency, safe to import from the core.
 */
export const backgroundErrors = new Map<string, number>()

export type FaultReporter = (err: unknown, task: string) => void

/** Counts a failure of `task` and reports it; a reporter that throws is swallowed too. */
export function noteBackgroundError(task: string, err: unknown, report?: FaultReporter): void {
  backgroundErrors.set(task, (backgroundErrors.get(task) ?? 0) + 1)
  if (report === undefined) return
  try {
    report(err, task)
  } catch {
    // The reporter is the last line (a logger on a full disk, say); it must not escape either.
  }
}

/**
 * Wraps a callback that runs with no caller to catch for it (setInterval, setTimeout, an
 * emitter): whatever it throws, or the promise it returns rejects with, is counted and reported
 * instead of ending the process.
 */
export function shielded<A extends unknown[]>(task: string, fn: (...args: A) => unknown, report?: FaultReporter): (...args: A) => void {
  return (...args: A): void => {
    try {
      const out = fn(...args)
      if (out instanceof Promise) out.catch((err: unknown) => noteBackgroundError(task, err, report))
    } catch (err) {
      noteBackgroundError(task, err, report)
    }
  }
}
