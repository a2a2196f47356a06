import { useState } from 'preact/hooks'
import { api, enc, type Exchange, type RouteAnswer } from '../api.js'
import { ErrorText, message, Page, usePoll } from '../components.js'
import { useSession } from '../session.js'

interface PublishAnswer {
  accepted: number
  duplicates: number
  unroutable: number
}

/** One event through the public publish route (envelope mode), then where the router sent it. */
export function PublishPage(): preact.JSX.Element {
  const session = useSession()
  const list = usePoll((signal) => api<{ exchanges: Exchange[] }>('/v1/exchanges', { signal }), 0)
  const writable = (list.data?.exchanges ?? []).filter((x) => session.can('write', x.name))
  const [exchange, setExchange] = useState('')
  const [key, setKey] = useState('')
  const [headers, setHeaders] = useState('')
  const [body, setBody] = useState('{\n  "service": "web",\n  "level": "info",\n  "message": "hello from the UI"\n}')
  const [result, setResult] = useState<{ published: PublishAnswer; route: RouteAnswer } | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const chosen = exchange === '' ? (writable[0]?.name ?? '') : exchange

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    setBusy(true)
    try {
      const value = JSON.parse(body) as unknown
      const h = headers.trim() === '' ? undefined : (JSON.parse(headers) as Record<string, unknown>)
      const envelope = { body: value, ...(key !== '' ? { routingKey: key } : {}), ...(h !== undefined ? { headers: h } : {}) }
      // The router is asked with the same key, headers and body: the publish answer has counts only.
      const route = await api<RouteAnswer>(`/v1/exchanges/${enc(chosen)}/route`, { method: 'POST', body: { ...(key !== '' ? { routingKey: key } : {}), ...(h !== undefined ? { headers: h } : {}), body: value } }).catch(() => undefined)
      const published = await api<PublishAnswer>(`/v1/exchanges/${enc(chosen)}/publish?envelope=true`, { method: 'POST', body: envelope })
      setResult({ published, route: route ?? { exchange: chosen, routingKey: key, streams: [], unroutable: published.unroutable > 0 } })
      setError(undefined)
    } catch (err) {
      setResult(undefined)
      setError(message(err))
    } finally {
      setBusy(false)
    }
  }

  return (
    <Page title="Publish">
      <ErrorText error={list.error} />
      {list.data !== undefined && writable.length === 0 && <p class="muted">User {session.who.username} may publish to no exchange.</p>}
      {writable.length > 0 && (
        <form class="card" onSubmit={(e) => void submit(e)}>
          <div class="fields">
            <label>
              Exchange
              <select name="exchange" value={chosen} onChange={(e) => setExchange(e.currentTarget.value)}>
                {writable.map((x) => (
                  <option key={x.name}>{x.name}</option>
                ))}
              </select>
            </label>
            <label>
              Routing key
              <input name="routingKey" value={key} onInput={(e) => setKey(e.currentTarget.value)} placeholder="(the exchange's template over the body)" />
            </label>
            <label>
              Headers (JSON object)
              <input name="headers" value={headers} onInput={(e) => setHeaders(e.currentTarget.value)} placeholder='{"env": "test"}' />
            </label>
          </div>
          <label class="block">
            Body (JSON)
            <textarea name="body" rows={8} value={body} onInput={(e) => setBody(e.currentTarget.value)} spellcheck={false} />
          </label>
          <button type="submit" disabled={busy}>
            Publish
          </button>
          <ErrorText error={error} />
          {result !== undefined && (
            <p class="banner ok" role="status" data-testid="publish-result">
              {result.published.accepted === 1 ? 'Stored' : result.published.duplicates === 1 ? 'A duplicate: not stored again' : 'Not stored: unroutable'} · key <code>{result.route.routingKey}</code>
              {result.route.streams.length > 0 && (
                <>
                  {' '}
                  · routed to{' '}
                  {result.route.streams.map((s, i) => (
                    <span key={s}>
                      {i > 0 ? ', ' : ''}
                      <a href={`#/streams/${enc(s)}`}>{s}</a>
                    </span>
                  ))}
                </>
              )}
            </p>
          )}
        </form>
      )}
    </Page>
  )
}
