import { useState } from 'preact/hooks'
import { api, enc, type DeadLetterSummary, type Group } from '../api.js'
import { Confirm, ErrorText, message, Page, Table, usePoll, type ConfirmRequest } from '../components.js'
import { num } from '../format.js'
import { useSession } from '../session.js'
import { EventBrowser } from './streams.js'

/** The streams groups dead-letter into, with the groups that do. */
async function deadLetterStreams(signal: AbortSignal): Promise<Map<string, string[]>> {
  const { groups } = await api<{ groups: Group[] }>('/v1/groups', { signal })
  const out = new Map<string, string[]>()
  const configs = await Promise.all(groups.map((g) => api<Group>(`/v1/groups/${enc(g.name)}`, { signal })))
  for (const g of configs) {
    const dl = g.config?.deadLetter
    if (dl?.kind !== 'stream' || dl.stream === undefined) continue
    out.set(dl.stream, [...(out.get(dl.stream) ?? []), g.name])
  }
  return out
}

export function DeadLettersPage(): preact.JSX.Element {
  const streams = usePoll(deadLetterStreams, 0)
  const entries = [...(streams.data ?? new Map<string, string[]>()).entries()]
  return (
    <Page title="Dead letters">
      <ErrorText error={streams.error} />
      {streams.data !== undefined && entries.length === 0 && <p class="muted">No group dead-letters into a stream. Groups without a target park their poison events (see each group).</p>}
      <Table label="Dead-letter streams" head={['dead-letter stream', 'groups sending to it']}>
        {entries.map(([stream, groups]) => (
          <tr key={stream}>
            <th scope="row">
              <a href={`#/dead-letters/${enc(stream)}`}>{stream}</a>
            </th>
            <td>{groups.join(', ')}</td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}

export function DeadLetterPage({ name }: { name: string }): preact.JSX.Element {
  const session = useSession()
  const [reason, setReason] = useState('')
  const [group, setGroup] = useState('')
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null)
  const [done, setDone] = useState<string | undefined>(undefined)
  const [browserKey, setBrowserKey] = useState(0)
  const [selected, setSelected] = useState<ReadonlySet<number>>(new Set())
  const selection = {
    selected,
    toggle: (offset: number, on: boolean): void =>
      setSelected((old) => {
        const next = new Set(old)
        if (on) next.add(offset)
        else next.delete(offset)
        return next
      }),
  }
  const query = new URLSearchParams()
  if (reason !== '') query.set('reason', reason)
  if (group !== '') query.set('group', group)
  const all = usePoll((signal) => api<DeadLetterSummary>(`/v1/streams/${enc(name)}/dead-letters`, { signal }), 5000, [name])
  const filtered = usePoll((signal) => api<DeadLetterSummary>(`/v1/streams/${enc(name)}/dead-letters?${query.toString()}`, { signal }), 5000, [name, reason, group])
  const s = all.data
  const f = filtered.data
  const mayRedrive = session.can('configure', name)

  const askRedrive = (): void => {
    if (f === undefined) return
    const filter = { ...(reason !== '' ? { reason } : {}), ...(group !== '' ? { group } : {}) }
    const which = Object.keys(filter).length === 0 ? 'every dead letter' : `the dead letters with ${Object.entries(filter).map(([k, v]) => `${k} ${v}`).join(' and ')}`
    setConfirm({
      title: `Redrive from ${name}`,
      text: `Send ${f.matching} ${f.matching === 1 ? 'event' : 'events'} (${which}) back to the exchange and routing key they were dead-lettered from?${f.noExchange > 0 ? ` ${f.noExchange} more name no exchange and stay.` : ''}${f.complete ? '' : ' The count covers the part of the stream read so far.'}`,
      action: `Redrive ${f.matching}`,
      run: async () => {
        const r = await api<{ redriven: number; skipped: number; remaining: boolean }>(`/v1/streams/${enc(name)}/redrive`, { method: 'POST', body: { limit: 1_000_000, ...(Object.keys(filter).length > 0 ? { filter } : {}) } })
        return `Redrove ${r.redriven} events${r.skipped > 0 ? `; ${r.skipped} had no exchange to go back to` : ''}${r.remaining ? '; more remain' : ''}.`
      },
    })
  }

  const askRedriveSelected = async (): Promise<void> => {
    const offsets = [...selected].sort((a, b) => a - b)
    // The count comes from the server, by the rules the redrive itself uses.
    const c = await api<DeadLetterSummary>(`/v1/streams/${enc(name)}/dead-letters?offsets=${offsets.join(',')}`)
    const none = offsets.length - c.matching - c.noExchange
    setConfirm({
      title: `Redrive from ${name}`,
      text: `Send ${c.matching} of the ${offsets.length} selected ${offsets.length === 1 ? 'event' : 'events'} (${offsets.map((o) => `#${o}`).join(', ')}) back to the exchange and routing key ${c.matching === 1 ? 'it was' : 'they were'} dead-lettered from?${c.noExchange > 0 ? ` ${c.noExchange} name no exchange and stay.` : ''}${none > 0 ? ` ${none} hold no dead letter to send (redriven already, or not a dead letter).` : ''}`,
      action: `Redrive ${c.matching}`,
      run: async () => {
        const r = await api<{ redriven: number; skipped: number }>(`/v1/streams/${enc(name)}/redrive`, { method: 'POST', body: { offsets } })
        setSelected(new Set())
        return `Redrove ${r.redriven} selected ${r.redriven === 1 ? 'event' : 'events'}.`
      },
    })
  }

  return (
    <Page title={`Dead letters in ${name}`}>
      <p>
        <a href="#/dead-letters">← all dead-letter streams</a>
      </p>
      <ErrorText error={all.error ?? filtered.error} />
      {done !== undefined && (
        <p class="banner ok" role="status" data-testid="action-result">
          {done}
        </p>
      )}
      {s !== undefined && (
        <div class="columns">
          <div>
            <h2>By reason</h2>
            <Table label="Dead letters by reason" head={['reason', 'events']}>
              {Object.entries(s.byReason).map(([r, n]) => (
                <tr key={r} data-testid={`reason-${r}`}>
                  <th scope="row">{r}</th>
                  <td class="n">{num(n)}</td>
                </tr>
              ))}
            </Table>
          </div>
          <div>
            <h2>By origin</h2>
            <Table label="Dead letters by origin" head={['group', 'stream', 'back to exchange', 'events']}>
              {s.byOrigin.map((o) => (
                <tr key={`${o.group}/${o.stream}/${o.exchange ?? ''}`}>
                  <th scope="row">{o.group}</th>
                  <td>{o.stream}</td>
                  <td>{o.exchange ?? '— (cannot be redriven)'}</td>
                  <td class="n">{num(o.count)}</td>
                </tr>
              ))}
            </Table>
          </div>
        </div>
      )}
      {s !== undefined && !s.complete && <p class="muted">Counted over the first {num(s.scanned)} events (server.http.maxScanEvents).</p>}
      {mayRedrive && s !== undefined && (
        <div class="card" aria-labelledby="redrive-title">
          <h2 id="redrive-title">Redrive</h2>
          <div class="fields">
            <label>
              Reason
              <select name="reason" value={reason} onChange={(e) => setReason(e.currentTarget.value)}>
                <option value="">any</option>
                {Object.keys(s.byReason).map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </label>
            <label>
              Group
              <select name="group" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
                <option value="">any</option>
                {[...new Set(s.byOrigin.map((o) => o.group))].map((g) => (
                  <option key={g}>{g}</option>
                ))}
              </select>
            </label>
          </div>
          <div class="actions">
            <button type="button" disabled={f === undefined || f.matching === 0} onClick={askRedrive} data-testid="redrive-button">
              Redrive {f === undefined ? '…' : num(f.matching)}…
            </button>
            <button type="button" disabled={selected.size === 0} onClick={() => void askRedriveSelected().catch((err: unknown) => setDone(message(err)))} data-testid="redrive-selected-button">
              Redrive the {num(selected.size)} selected…
            </button>
          </div>
          <p class="muted">Pick single events with their boxes in the list below to redrive just those.</p>
        </div>
      )}
      {session.can('read', name) && <EventBrowser key={browserKey} stream={name} selection={mayRedrive ? selection : undefined} />}
      <Confirm
        request={confirm}
        onClose={(result) => {
          setConfirm(null)
          if (result !== undefined) {
            setDone(result)
            // A filter whose dead letters all went back would match nothing now.
            setReason('')
            setGroup('')
            all.reload()
            filtered.reload()
            setBrowserKey((k) => k + 1)
          }
        }}
      />
    </Page>
  )
}
