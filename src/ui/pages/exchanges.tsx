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
            <th scope="row">
              <a href={`#/exchanges/${enc(x.name)}`}>{x.name}</a>
            </th>
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

interface Edge {
  readonly kind: 'stream' | 'exchange'
  readonly name: string
  readonly label: string
  readonly alternate: boolean
}

const rowHeight = 40
const boxWidth = 190
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s)

/**
 * One exchange's bindings as a graph: the exchange on the left, where its bindings lead on the
 * right (streams and exchanges, each a link), the key on each edge, its alternate dashed. SVG, so
 * it scales with the page and needs no library.
 */
export function BindingGraph({ exchange }: { exchange: Exchange }): preact.JSX.Element {
  const edges: Edge[] = exchange.bindings.map((b) => ({
    kind: b.stream !== undefined ? 'stream' : 'exchange',
    name: b.stream ?? b.toExchange ?? '',
    label: b.headers !== undefined ? `${b.match ?? 'all'} of ${Object.entries(b.headers).map(([k, v]) => `${k}=${String(v)}`).join(', ')}` : b.key,
    alternate: false,
  }))
  if (exchange.alternate !== null) edges.push({ kind: 'exchange', name: exchange.alternate, label: 'alternate (unroutable)', alternate: true })
  const height = Math.max(1, edges.length) * rowHeight + 10
  const width = 640
  const sy = height / 2
  const dx = width - boxWidth - 10
  return (
    <figure class="graph" data-testid="binding-graph">
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="img" aria-label={`Exchange ${exchange.name} routes to ${edges.length === 0 ? 'nothing' : edges.map((e) => `${e.kind} ${e.name}${e.label !== '' ? ` on ${e.label}` : ''}`).join('; ')}`}>
        {edges.map((e, i) => {
          const y = i * rowHeight + 5 + rowHeight / 2
          return (
            <g key={i} class={e.alternate ? 'edge alternate' : 'edge'} data-testid={`edge-${e.kind}-${e.name}`}>
              <path d={`M ${10 + boxWidth} ${sy} C ${(10 + boxWidth + dx) / 2} ${sy}, ${(10 + boxWidth + dx) / 2} ${y}, ${dx} ${y}`} fill="none" />
              {/* By the destination, where the edges are a row apart, so labels never overlap. */}
              <text x={dx - 8} y={y - 5} text-anchor="end">
                {clip(e.label, 30)}
              </text>
              <a href={`#/${e.kind === 'stream' ? 'streams' : 'exchanges'}/${enc(e.name)}`}>
                <rect x={dx} y={y - 14} width={boxWidth} height={28} rx={6} class={e.kind} />
                <text x={dx + 10} y={y + 5}>
                  {e.kind === 'stream' ? '▤ ' : '⇢ '}
                  {clip(e.name, 22)}
                </text>
              </a>
            </g>
          )
        })}
        <rect x={10} y={sy - 16} width={boxWidth} height={32} rx={6} class="exchange source" />
        <text x={20} y={sy + 5} class="source-label">
          {clip(`${exchange.name} (${exchange.type})`, 24)}
        </text>
      </svg>
    </figure>
  )
}

export function ExchangePage({ name }: { name: string }): preact.JSX.Element {
  const list = usePoll((signal) => api<{ exchanges: Exchange[] }>('/v1/exchanges', { signal }), 10_000)
  const x = list.data?.exchanges.find((e) => e.name === name)
  return (
    <Page title={`Exchange ${name}`}>
      <p>
        <a href="#/exchanges">← all exchanges</a>
      </p>
      <ErrorText error={list.error} />
      {list.data !== undefined && x === undefined && <p class="error">No exchange {name}.</p>}
      {x !== undefined && (
        <>
          <dl class="facts">
            <dt>type</dt>
            <dd>{x.type}</dd>
            <dt>routing key template</dt>
            <dd>{x.routingKey === null ? '—' : <code>{x.routingKey}</code>}</dd>
            <dt>alternate</dt>
            <dd>{x.alternate ?? '—'}</dd>
            <dt>unroutable</dt>
            <dd>{x.unroutable}</dd>
          </dl>
          <h2>Bindings</h2>
          {x.bindings.length === 0 && x.alternate === null ? <p class="muted">No binding: every event is unroutable.</p> : <BindingGraph exchange={x} />}
          <RouteTester exchanges={[x]} />
        </>
      )}
    </Page>
  )
}
