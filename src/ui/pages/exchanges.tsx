import { useState } from 'preact/hooks'
import { api, enc, type Exchange, type RouteAnswer } from '../api.js'
import { ErrorText, message, Page, Table, usePoll } from '../components.js'
import { useSession } from '../session.js'

function bindingText(b: Exchange['bindings'][number]): string {
  const to = b.stream !== undefined ? `stream ${b.stream}` : `exchange ${b.toExchange ?? ''}`
  if (b.headers !== undefined) return `${to} when ${b.match ?? 'all'} of ${JSON.stringify(b.headers)}`
  return b.key === '' ? to : `${to} on "${b.key}"`
}

function parseObject(text: string, what: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined
  const v = JSON.parse(text) as unknown
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} must be a JSON object`)
  return v as Record<string, unknown>
}

/** Asks the router where an event would go; nothing is published. */
export function RouteTester({ exchanges }: { exchanges: readonly Exchange[] }): preact.JSX.Element {
  const session = useSession()
  const usable = exchanges.filter((e) => session.hasTag('monitoring') || session.can('write', e.name))
  const [exchange, setExchange] = useState('')
  const [key, setKey] = useState('')
  const [headers, setHeaders] = useState('')
  const [body, setBody] = useState('')
  const [answer, setAnswer] = useState<RouteAnswer | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const chosen = exchange === '' ? (usable[0]?.name ?? '') : exchange
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      const h = parseObject(headers, 'headers')
      const b = body.trim() === '' ? undefined : (JSON.parse(body) as unknown)
      setAnswer(await api<RouteAnswer>(`/v1/exchanges/${enc(chosen)}/route`, { method: 'POST', body: { ...(key !== '' ? { routingKey: key } : {}), ...(h !== undefined ? { headers: h } : {}), ...(b !== undefined ? { body: b } : {}) } }))
      setError(undefined)
    } catch (err) {
      setAnswer(undefined)
      setError(message(err))
    }
  }
  if (usable.length === 0) return <></>
  return (
    <form class="card" onSubmit={(e) => void submit(e)} aria-labelledby="route-title">
      <h2 id="route-title">Test a routing key</h2>
      <p class="muted">Where would an event go? The router answers; nothing is published.</p>
      <div class="fields">
        <label>
          Exchange
          <select value={chosen} onChange={(e) => setExchange(e.currentTarget.value)} name="exchange">
            {usable.map((x) => (
              <option key={x.name}>{x.name}</option>
            ))}
          </select>
        </label>
        <label>
          Routing key
          <input name="routingKey" value={key} onInput={(e) => setKey(e.currentTarget.value)} placeholder="(the exchange's template over the body)" />
        </label>
        <label>
          Headers (JSON)
          <input name="headers" value={headers} onInput={(e) => setHeaders(e.currentTarget.value)} placeholder='{"level": "error"}' />
        </label>
        <label>
          Body (JSON, for templates and header matches)
          <input name="body" value={body} onInput={(e) => setBody(e.currentTarget.value)} placeholder='{"service": "api", "level": "info"}' />
        </label>
      </div>
      <button type="submit">Test</button>
      <ErrorText error={error} />
      {answer !== undefined && (
        <p class="result" role="status" data-testid="route-result">
          Key <code>{answer.routingKey}</code>{' '}
          {answer.unroutable ? (
            <>matches no binding: the event would be {answer.policy === 'reject' ? 'refused' : 'dropped (counted as unroutable)'}.</>
          ) : (
            <>goes to {answer.streams.map((s) => <code key={s}>{s}</code>).reduce<preact.ComponentChildren[]>((acc, el, i) => (i === 0 ? [el] : [...acc, ', ', el]), [])}.</>
          )}
        </p>
      )}
    </form>
  )
}

export function ExchangesPage(): preact.JSX.Element {
  const list = usePoll((signal) => api<{ exchanges: Exchange[] }>('/v1/exchanges', { signal }), 10_000)
  const exchanges = list.data?.exchanges ?? []
  return (
    <Page title="Exchanges and bindings">
      <ErrorText error={list.error} />
      <Table label="Exchanges" head={['exchange', 'type', 'routing key template', 'alternate', 'unroutable', 'bindings']}>
        {exchanges.map((x) => (
          <tr key={x.name} data-testid={`exchange-${x.name}`}>
            <th scope="row">{x.name}</th>
            <td>{x.type}</td>
            <td>{x.routingKey === null ? '—' : <code>{x.routingKey}</code>}</td>
            <td>{x.alternate ?? '—'}</td>
            <td>{x.unroutable}</td>
            <td>
              {x.bindings.length === 0 ? (
                '—'
              ) : (
                <ul class="bindings">
                  {x.bindings.map((b, i) => (
                    <li key={i}>→ {bindingText(b)}</li>
                  ))}
                </ul>
              )}
            </td>
          </tr>
        ))}
      </Table>
      <RouteTester exchanges={exchanges} />
    </Page>
  )
}
