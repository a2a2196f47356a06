import { useEffect, useRef, useState } from 'preact/hooks'
import { api, enc, readEvents, type SearchPage, type Stream, type WireEvent } from '../api.js'
import { ErrorText, message, Page, Pretty, Table, usePoll } from '../components.js'
import { bytes, num, time } from '../format.js'
import { useSession } from '../session.js'

export function StreamsPage(): preact.JSX.Element {
  const list = usePoll((signal) => api<{ streams: Stream[] }>('/v1/streams', { signal }), 5000)
  return (
    <Page title="Streams">
      <ErrorText error={list.error} />
      <Table label="Streams" head={['stream', 'events', 'size', 'segments', 'first offset', 'last offset', 'oldest', 'newest', 'append rate', 'retention']}>
        {(list.data?.streams ?? []).map((s) => (
          <tr key={s.name} data-testid={`stream-${s.name}`}>
            <th scope="row">
              <a href={`#/streams/${enc(s.name)}`}>{s.name}</a>
            </th>
            <td class="n" data-testid="events">
              {num(s.events)}
            </td>
            <td class="n">{bytes(s.bytes)}</td>
            <td class="n">{num(s.segments)}</td>
            <td class="n">{s.events === 0 ? '—' : num(s.firstOffset)}</td>
            <td class="n">{s.events === 0 ? '—' : num(s.lastOffset)}</td>
            <td>{time(s.oldestTimestamp)}</td>
            <td>{time(s.newestTimestamp)}</td>
            <td class="n">{s.appendRatePerSec}/s</td>
            <td>
              <code>{retentionText(s.retention)}</code>
            </td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}

function retentionText(r: Record<string, unknown>): string {
  return Object.entries(r)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(', ')
}

/** Events a page lets a person pick (the dead letters to redrive), by offset. */
export interface Selection {
  readonly selected: ReadonlySet<number>
  readonly toggle: (offset: number, on: boolean) => void
}

function EventRow({ e, selection }: { e: WireEvent; selection?: Selection | undefined }): preact.JSX.Element {
  const deaths = e.headers['x-death']
  const preview = typeof e.body === 'string' ? e.body : JSON.stringify(e.body)
  return (
    <li class={selection === undefined ? 'event' : 'event selectable'} data-offset={e.offset}>
      {selection !== undefined && <input type="checkbox" aria-label={`Select event ${e.offset}`} checked={selection.selected.has(e.offset)} onChange={(ev) => selection.toggle(e.offset, ev.currentTarget.checked)} />}
      <details>
        <summary>
          <span class="offset">#{e.offset}</span> <span class="time">{time(e.timestamp)}</span> <code class="key">{e.routingKey}</code> <span class="preview">{preview.length > 160 ? `${preview.slice(0, 160)}…` : preview}</span>
        </summary>
        <div class="event-detail">
          <p class="muted">
            exchange {e.exchange ?? '—'} · id {e.id ?? '—'}
            {e.bodyEncoding !== undefined ? ` · body is ${e.bodyEncoding}` : ''}
          </p>
          <h4>Body</h4>
          <Pretty value={e.body} />
          {Object.keys(e.headers).length > 0 && (
            <>
              <h4>Headers{Array.isArray(deaths) ? ` (x-death: ${deaths.length} ${deaths.length === 1 ? 'death' : 'deaths'})` : ''}</h4>
              <Pretty value={e.headers} />
            </>
          )}
        </div>
      </details>
    </li>
  )
}

const pageSize = 50

/** Reads a stream page by page through the search route; nothing is consumed, nothing settles. */
export function EventBrowser({ stream, initialKey = '', selection }: { stream: string; initialKey?: string; selection?: Selection | undefined }): preact.JSX.Element {
  const [from, setFrom] = useState('earliest')
  const [key, setKey] = useState(initialKey)
  const [text, setText] = useState('')
  const [page, setPage] = useState<SearchPage | undefined>(undefined)
  const [starts, setStarts] = useState<string[]>([])
  const [error, setError] = useState<string | undefined>(undefined)
  const load = async (start: string, history: string[]): Promise<void> => {
    const q = new URLSearchParams({ from: start, limit: String(pageSize) })
    if (key !== '') q.set('key', key)
    if (text !== '') q.set('q', text)
    try {
      setPage(await api<SearchPage>(`/v1/streams/${enc(stream)}/search?${q.toString()}`))
      setStarts(history)
      setError(undefined)
    } catch (err) {
      setError(message(err))
    }
  }
  useEffect(() => {
    void load('earliest', ['earliest'])
  }, [stream])
  const submit = (e: Event): void => {
    e.preventDefault()
    void load(from, [from])
  }
  return (
    <div class="card" aria-labelledby="browser-title">
      <h2 id="browser-title">Events</h2>
      <form class="fields" onSubmit={submit} role="search">
        <label>
          From (offset, ISO time, earliest, latest)
          <input name="from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          Routing key pattern
          <input name="key" value={key} onInput={(e) => setKey(e.currentTarget.value)} placeholder="e.g. *.error or api.#" />
        </label>
        <label>
          Text in the body
          <input name="q" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorText error={error} />
      {page !== undefined && (
        <>
          <p class="muted" data-testid="browser-status">
            {page.events.length === 0 ? 'No events' : `Offsets ${page.events[0]!.offset}–${page.events[page.events.length - 1]!.offset}`} · read {num(page.scanned)} · stream holds {num(page.startOffset)}–{num(Math.max(page.startOffset, page.endOffset - 1))}
            {page.complete ? ' · end of stream' : ''}
          </p>
          <ol class="events" data-testid="events">
            {page.events.map((e) => (
              <EventRow key={e.offset} e={e} selection={selection} />
            ))}
          </ol>
          <div class="actions">
            <button type="button" disabled={starts.length <= 1} onClick={() => void load(starts[starts.length - 2]!, starts.slice(0, -1))}>
              Previous page
            </button>
            <button type="button" disabled={page.complete} onClick={() => void load(String(page.nextOffset), [...starts, String(page.nextOffset)])}>
              Next page
            </button>
          </div>
        </>
      )}
    </div>
  )
}

/** The newest events as they are stored, over server-sent events; kept to the last few hundred. */
function LiveTail({ stream }: { stream: string }): preact.JSX.Element {
  const [on, setOn] = useState(false)
  const [events, setEvents] = useState<WireEvent[]>([])
  const [error, setError] = useState<string | undefined>(undefined)
  const ctl = useRef<AbortController | null>(null)
  useEffect(() => () => ctl.current?.abort(), [])
  const start = (): void => {
    const c = new AbortController()
    ctl.current = c
    setOn(true)
    setError(undefined)
    readEvents(
      `/v1/streams/${enc(stream)}/tail?from=latest`,
      (data) => setEvents((old) => [JSON.parse(data) as WireEvent, ...old].slice(0, 200)),
      c.signal,
    ).then(
      () => setOn(false),
      (err: unknown) => {
        if (!c.signal.aborted) setError(message(err))
        setOn(false)
      },
    )
  }
  const stop = (): void => {
    ctl.current?.abort()
    setOn(false)
  }
  return (
    <div class="card" aria-labelledby="tail-title">
      <h2 id="tail-title">Live tail</h2>
      <div class="actions">
        {on ? (
          <button type="button" onClick={stop}>
            Stop tail
          </button>
        ) : (
          <button type="button" onClick={start}>
            Start live tail
          </button>
        )}
        <span class="muted" role="status" data-testid="tail-status">
          {on ? `tailing; ${events.length} new` : 'stopped'}
        </span>
      </div>
      <ErrorText error={error} />
      <ol class="events" data-testid="tail-events" aria-live="polite">
        {events.map((e) => (
          <EventRow key={e.offset} e={e} />
        ))}
      </ol>
    </div>
  )
}

export function StreamPage({ name }: { name: string }): preact.JSX.Element {
  const session = useSession()
  const s = usePoll((signal) => api<Stream>(`/v1/streams/${enc(name)}`, { signal }), 5000, [name])
  const readable = session.can('read', name)
  return (
    <Page title={`Stream ${name}`}>
      {session.hasTag('monitoring') && (
        <p>
          <a href="#/streams">← all streams</a>
        </p>
      )}
      <ErrorText error={s.error} />
      {s.data !== undefined && (
        <dl class="facts">
          <dt>events</dt>
          <dd data-testid="stream-events">{num(s.data.events)}</dd>
          <dt>size</dt>
          <dd>{bytes(s.data.bytes)}</dd>
          <dt>offsets</dt>
          <dd>{s.data.events === 0 ? '—' : `${num(s.data.firstOffset)} – ${num(s.data.lastOffset)}`}</dd>
          <dt>times</dt>
          <dd>
            {time(s.data.oldestTimestamp)} – {time(s.data.newestTimestamp)}
          </dd>
          <dt>append rate</dt>
          <dd>{s.data.appendRatePerSec}/s</dd>
          <dt>retention</dt>
          <dd>
            <code>{retentionText(s.data.retention)}</code>
          </dd>
        </dl>
      )}
      {readable ? (
        <>
          <EventBrowser stream={name} />
          <LiveTail stream={name} />
        </>
      ) : (
        <p class="muted">User {session.who.username} has no read permission on this stream: its events are not shown.</p>
      )}
    </Page>
  )
}
