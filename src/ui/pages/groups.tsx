import { useState } from 'preact/hooks'
import { api, enc, type Group, type Lag } from '../api.js'
import { Chart } from '../chart.js'
import { Confirm, ErrorText, Page, Table, usePoll, type ConfirmRequest } from '../components.js'
import { duration, num, time } from '../format.js'
import { useSession } from '../session.js'

const deadTotal = (g: Group): number => Object.values(g.deadLettered).reduce((a, b) => a + b, 0)

export function GroupsPage(): preact.JSX.Element {
  const list = usePoll((signal) => api<{ groups: Group[] }>('/v1/groups', { signal }), 3000)
  return (
    <Page title="Consumer groups">
      <ErrorText error={list.error} />
      <Table label="Groups" head={['group', 'stream', 'backlog', 'lag', 'in flight', 'members', 'delivered', 'redelivered', 'dead-lettered', 'parked']}>
        {(list.data?.groups ?? []).map((g) => (
          <tr key={g.name} data-testid={`group-${g.name}`}>
            <th scope="row">
              <a href={`#/groups/${enc(g.name)}`}>{g.name}</a>
            </th>
            <td>{g.stream}</td>
            <td class="n" data-testid="backlog">
              {num(g.backlog)}
            </td>
            <td class="n" data-testid="lag">
              {duration(g.lagSeconds)}
            </td>
            <td class="n">{num(g.inFlight)}</td>
            <td class="n">{num(g.members.length)}</td>
            <td class="n">{num(g.delivered)}</td>
            <td class="n">{num(g.redelivered)}</td>
            <td class="n">{num(deadTotal(g))}</td>
            <td class="n">{num(g.parked)}</td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}

function resetTarget(kind: string, value: string): string | number {
  if (kind === 'offset') return Number(value)
  if (kind === 'time') return new Date(value).toISOString()
  return kind
}

export function GroupPage({ name }: { name: string }): preact.JSX.Element {
  const session = useSession()
  const g = usePoll((signal) => api<Group>(`/v1/groups/${enc(name)}`, { signal }), 2000, [name])
  const lag = usePoll((signal) => api<Lag>(`/v1/groups/${enc(name)}/lag`, { signal }), 2000, [name])
  const l = lag.data
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null)
  const [done, setDone] = useState<string | undefined>(undefined)
  const [kind, setKind] = useState('earliest')
  const [value, setValue] = useState('')
  const group = g.data
  const mayConfigure = session.can('configure', name)
  const mayRead = session.can('read', name)

  const askReset = (e: Event): void => {
    e.preventDefault()
    if (group === undefined) return
    const to = resetTarget(kind, value)
    setConfirm({
      title: `Reset ${name}`,
      text: `Move group ${name}'s cursor from offset ${group.cursor} to ${String(to)}? Its ${group.inFlight} in-flight deliveries are dropped; events from there on are delivered again.`,
      action: 'Reset',
      run: async () => `Cursor now at ${(await api<{ cursor: number }>(`/v1/groups/${enc(name)}/reset`, { method: 'POST', body: { to } })).cursor}.`,
    })
  }
  const askPurge = (): void => {
    if (group === undefined) return
    setConfirm({
      title: `Purge parked events of ${name}`,
      text: `Drop the ${group.parked} parked events of group ${name}? They are not delivered again.`,
      action: 'Purge',
      run: async () => `Purged ${(await api<{ purged: number }>(`/v1/groups/${enc(name)}/parked`, { method: 'DELETE' })).purged} parked events.`,
    })
  }
  const askRedriveParked = (): void => {
    if (group === undefined) return
    setConfirm({
      title: `Deliver parked events of ${name} again`,
      text: `Deliver the ${group.parked} parked events of group ${name} again?`,
      action: 'Redeliver',
      run: async () => `Redelivering ${(await api<{ redriven: number }>(`/v1/groups/${enc(name)}/parked/redrive`, { method: 'POST', body: {} })).redriven} events.`,
    })
  }

  return (
    <Page title={`Group ${name}`}>
      {session.hasTag('monitoring') && (
        <p>
          <a href="#/groups">← all groups</a>
        </p>
      )}
      <ErrorText error={g.error} />
      {done !== undefined && (
        <p class="banner ok" role="status" data-testid="action-result">
          {done}
        </p>
      )}
      {group !== undefined && (
        <>
          <dl class="facts">
            <dt>stream</dt>
            <dd>
              <a href={`#/streams/${enc(group.stream)}`}>{group.stream}</a>
            </dd>
            <dt>cursor</dt>
            <dd data-testid="cursor">{num(group.cursor)}</dd>
            <dt>backlog</dt>
            <dd data-testid="group-backlog">{num(group.backlog)} events</dd>
            <dt>lag</dt>
            <dd data-testid="group-lag">{duration(group.lagSeconds)}</dd>
            <dt>in flight</dt>
            <dd>{num(group.inFlight)}</dd>
            <dt>delivered</dt>
            <dd data-testid="group-delivered">{num(group.delivered)}</dd>
            <dt>acked / nacked</dt>
            <dd>
              {num(group.acked)} / {num(group.nacked)}
            </dd>
            <dt>redelivered</dt>
            <dd>{num(group.redelivered)}</dd>
            <dt>ack timeouts</dt>
            <dd>{num(group.ackTimeouts)}</dd>
            <dt>parked</dt>
            <dd data-testid="group-parked">{num(group.parked)}</dd>
          </dl>
          {l !== undefined && (
            <>
              <div class="charts" data-testid="lag-charts">
                <Chart title="Lag (events)" unit="events" times={l.times} series={[{ label: 'backlog', values: l.backlog, colorVar: '--accent' }]} />
                <Chart title="Lag (seconds)" unit="s" times={l.times} series={[{ label: 'oldest unsettled', values: l.lagSeconds, colorVar: '--warn-fg' }]} />
              </div>
              {!l.tracked && <p class="muted">This group's lag is not kept over time (server.http.maxLagHistoryGroups, or it has just been declared): the numbers above are its lag now.</p>}
            </>
          )}
          <h2>Dead-lettered, by reason</h2>
          <Table label="Dead-lettered by reason" head={['reason', 'events']}>
            {Object.entries(group.deadLettered).map(([reason, n]) => (
              <tr key={reason}>
                <th scope="row">{reason}</th>
                <td class="n">{num(n)}</td>
              </tr>
            ))}
          </Table>
          <h2>Members</h2>
          {group.members.length === 0 ? (
            <p class="muted">No member is connected.</p>
          ) : (
            <Table label="Members" head={['member', 'credit', 'in flight', 'assigned', 'last seen']}>
              {group.members.map((m) => (
                <tr key={m.name}>
                  <th scope="row">{m.name}</th>
                  <td class="n">{num(m.credit)}</td>
                  <td class="n">{num(m.inFlight)}</td>
                  <td class="n">{num(m.assigned)}</td>
                  <td>{time(m.lastSeen)}</td>
                </tr>
              ))}
            </Table>
          )}
          {mayConfigure && (
            <form class="card" onSubmit={askReset} aria-labelledby="reset-title">
              <h2 id="reset-title">Reset (replay or skip)</h2>
              <div class="fields">
                <label>
                  To
                  <select name="to" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
                    <option value="earliest">earliest</option>
                    <option value="latest">latest</option>
                    <option value="offset">an offset</option>
                    <option value="time">a time</option>
                  </select>
                </label>
                {(kind === 'offset' || kind === 'time') && (
                  <label>
                    {kind === 'offset' ? 'Offset' : 'Time (ISO 8601)'}
                    <input name="value" required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
                  </label>
                )}
              </div>
              <button type="submit">Reset…</button>
            </form>
          )}
          {group.parked > 0 && (mayRead || mayConfigure) && (
            <div class="card">
              <h2>Parked events</h2>
              <div class="actions">
                {mayConfigure && (
                  <button type="button" onClick={askRedriveParked}>
                    Deliver again…
                  </button>
                )}
                {mayRead && (
                  <button type="button" class="danger" onClick={askPurge}>
                    Purge…
                  </button>
                )}
              </div>
            </div>
          )}
        </>
      )}
      <Confirm
        request={confirm}
        onClose={(result) => {
          setConfirm(null)
          if (result !== undefined) {
            setDone(result)
            g.reload()
          }
        }}
      />
    </Page>
  )
}
