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
}

/** The two levels the stack reports on; a pino logger fits. */
export interface LifecycleLogger {
  debug(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

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
   * Later calls share the first.
   */
  close(): Promise<CloseFailure[]> {
    this.#closing ??= (async () => {
      const failures: CloseFailure[] = []
      for (let p = this.#stack.pop(); p !== undefined; p = this.#stack.pop()) {
        try {
          await p.part.close()
          this.#logger?.debug({ part: p.name }, 'part closed')
        } catch (error) {
          failures.push({ part: p.name, error })
          this.#logger?.error({ part: p.name, err: error }, 'part failed to close')
        }
      }
      return failures
    })()
    return this.#closing
  }
}
