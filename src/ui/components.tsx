import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError } from './api.js'

export interface Loaded<T> {
  readonly data: T | undefined
  readonly error: string | undefined
  readonly reload: () => void
}

/**
 * Loads on mount and again every `everyMs` (0: once), and on reload(). A slow answer never
 * overwrites a newer one, and nothing is fetched while the tab is hidden.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, everyMs: number, deps: readonly unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [tick, setTick] = useState(0)
  useEffect(() => {
    const ctl = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const run = async (): Promise<void> => {
      if (document.visibilityState !== 'hidden') {
        try {
          const v = await load(ctl.signal)
          if (ctl.signal.aborted) return
          setData(v)
          setError(undefined)
        } catch (err) {
          if (ctl.signal.aborted) return
          setError(message(err))
        }
      }
      if (everyMs > 0 && !ctl.signal.aborted) timer = setTimeout(() => void run(), everyMs)
    }
    void run()
    return () => {
      ctl.abort()
      if (timer !== undefined) clearTimeout(timer)
    }
    // `load` is a new closure each render; `deps` says when it really changed.
  }, [tick, ...deps])
  return { data, error, reload: () => setTick((t) => t + 1) }
}

export function message(err: unknown): string {
  if (err instanceof ApiError) return `${err.status} ${err.code}: ${err.message}`
  return err instanceof Error ? err.message : String(err)
}

export function ErrorText({ error }: { error: string | undefined }): preact.JSX.Element | null {
  return error === undefined ? null : (
    <p class="error" role="alert">
      {error}
    </p>
  )
}

export function Page({ title, children }: { title: string; children: ComponentChildren }): preact.JSX.Element {
  useEffect(() => {
    document.title = `${title} · Sluice`
  }, [title])
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">{title}</h1>
      {children}
    </section>
  )
}

/** A table that scrolls sideways on a narrow screen instead of squeezing its columns. */
export function Table({ label, head, children }: { label: string; head: readonly string[]; children: ComponentChildren }): preact.JSX.Element {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
      <table>
        <thead>
          <tr>
            {head.map((h) => (
              <th scope="col" key={h}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  )
}

export function Stat({ label, value, testId }: { label: string; value: string; testId?: string }): preact.JSX.Element {
  return (
    <div class="stat">
      <div class="stat-value" data-testid={testId}>
        {value}
      </div>
      <div class="stat-label">{label}</div>
    </div>
  )
}

export interface ConfirmRequest {
  readonly title: string
  readonly text: string
  readonly action: string
  readonly run: () => Promise<string>
}

/**
 * A modal dialog (the browser's own <dialog>: focus moves into it, Escape cancels) that says what
 * will happen, with counts, before it does it.
 */
export function Confirm({ request, onClose }: { request: ConfirmRequest | null; onClose: (result?: string) => void }): preact.JSX.Element {
  const ref = useRef<HTMLDialogElement>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  useEffect(() => {
    const d = ref.current
    if (d === null) return
    if (request !== null && !d.open) {
      setError(undefined)
      d.showModal()
    } else if (request === null && d.open) d.close()
  }, [request])
  const go = async (): Promise<void> => {
    if (request === null) return
    setBusy(true)
    try {
      const result = await request.run()
      onClose(result)
    } catch (err) {
      setError(message(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <dialog ref={ref} onClose={() => onClose()} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{request?.title}</h2>
      <p data-testid="confirm-text">{request?.text}</p>
      <ErrorText error={error} />
      <div class="actions">
        <button type="button" class="danger" disabled={busy} onClick={() => void go()}>
          {request?.action}
        </button>
        <button type="button" onClick={() => onClose()}>
          Cancel
        </button>
      </div>
    </dialog>
  )
}

export function Pretty({ value }: { value: unknown }): preact.JSX.Element {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>
}
