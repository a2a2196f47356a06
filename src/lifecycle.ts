/**
 * The server's parts open in order and close in reverse, on a failed start as on a stop: whatever
 * opened before a failure is released (ports, the store's lock, timers), so the same process can
 * start again on the same data dir. No dependency beyond a logger's shape: the core may use it.
 */

/** What a part hands back once open: how to let go of what it took. */
export interface Part {
  close(): Promise<void> | void
}

/** A close that failed; the parts after it were still closed. */
export interface CloseFailure {
  readonly part: string
  readonly error: unknown
  /** The part was still closing when the close's deadline passed. */
  readonly timedOut?: true
}

/** The levels the stack reports on; a pino logger fits. */
export interface LifecycleLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface CloseOptions {
  /**
   * The whole close takes this long at most. Past it the close resolves, with the part still
   * closing as a failure, so a caller can exit before an orchestrator's SIGKILL; the parts keep
   * closing in the background meanwhile.
   */
  readonly timeoutMs?: number
  /** A part that takes longer than this to close is named in the log, and again each such period (default 1 s, or a fifth of timeoutMs if shorter). */
  readonly noticeMs?: number
}

const noticeMsDefault = 1000

export class Lifecycle {
  readonly #stack: Array<{ readonly name: string; readonly part: Part }> = []
  readonly #logger: LifecycleLogger | undefined
  #closing: Promise<CloseFailure[]> | undefined

  constructor(logger?: LifecycleLogger) {
    this.#logger = logger
  }

  /**
   * Opens one part and stacks its close. A part whose open throws has released what it took
   * itself; only the parts before it are on the stack.
   */
  async open<P extends Part>(name: string, open: () => Promise<P> | P): Promise<P> {
    if (this.#closing !== undefined) throw new Error(`cannot open ${name}: the server is closing`)
    const part = await open()
    // A stop that began while this part was opening has already run past it: close it here.
    if (this.#closing !== undefined) {
      await part.close()
      throw new Error(`cannot open ${name}: the server is closing`)
    }
    this.#stack.push({ name, part })
    this.#logger?.debug({ part: name }, 'part open')
    return part
  }

  /** The parts open now, oldest first. */
  get names(): string[] {
    return this.#stack.map((p) => p.name)
  }

  /**
   * Closes every open part, newest first, one at a time: a part may still use those opened
   * before it while it closes (the HTTP door answers its long polls from the groups). A close
   * that throws is logged and the rest still close; the failures are what this resolves with.
   * A part slow to close is logged while it is waited for, and `timeoutMs` bounds the whole.
   * Later calls share the first.
   */
  close(opts: CloseOptions = {}): Promise<CloseFailure[]> {
    this.#closing ??= this.#close(opts)
    return this.#closing
  }

  async #close(opts: CloseOptions): Promise<CloseFailure[]> {
    const failures: CloseFailure[] = []
    const started = Date.now()
    let current: string | undefined
    // A short deadline gets its notices early enough to show before it passes.
    const noticeMs = opts.noticeMs ?? Math.min(noticeMsDefault, Math.max(10, (opts.timeoutMs ?? Infinity) / 5))
    const all = (async () => {
      for (let p = this.#stack.pop(); p !== undefined; p = this.#stack.pop()) {
        const name = p.name
        current = name
        const since = Date.now()
        const notice = setInterval(() => this.#logger?.info({ part: name, waitingMs: Date.now() - since }, `stop is waiting for ${name} to close`), noticeMs)
        try {
          await p.part.close()
          this.#logger?.debug({ part: name }, 'part closed')
        } catch (error) {
          failures.push({ part: name, error })
          this.#logger?.error({ part: name, err: error }, 'part failed to close')
        } finally {
          clearInterval(notice)
        }
      }
      current = undefined
      return failures
    })()
    const timeoutMs = opts.timeoutMs
    if (timeoutMs === undefined) return all
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<CloseFailure[]>((resolve) => {
      timer = setTimeout(() => {
        const part = current ?? 'unknown'
        const left = this.#stack.map((p) => p.name).reverse()
        this.#logger?.error({ part, left, timeoutMs, elapsedMs: Date.now() - started }, `stop timed out waiting for ${part} to close`)
        resolve([...failures, { part, error: new Error(`${part} was still closing after ${timeoutMs} ms`), timedOut: true }])
      }, timeoutMs)
    })
    try {
      return await Promise.race([all, deadline])
    } finally {
      clearTimeout(timer)
    }
  }
}
