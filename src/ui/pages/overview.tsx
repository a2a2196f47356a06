import { api, type Overview, type Rates } from '../api.js'
import { Chart } from '../chart.js'
import { ErrorText, Page, Stat, Table, usePoll } from '../components.js'
import { bytes, duration, num } from '../format.js'

export function OverviewPage(): preact.JSX.Element {
  const overview = usePoll((signal) => api<Overview>('/v1/overview', { signal }), 2000)
  const rates = usePoll((signal) => api<Rates>('/v1/overview/rates', { signal }), 2000)
  const o = overview.data
  const r = rates.data
  const limited = Object.entries(o?.rateLimited ?? {}).filter(([, n]) => n > 0)
  return (
    <Page title="Overview">
      <ErrorText error={overview.error ?? rates.error} />
      {o?.alarms.map((a) => (
        <p class="banner alarm" role="alert" key={a.name} data-testid="alarm-banner">
          Alarm <strong>{a.name}</strong> since {new Date(a.since).toLocaleTimeString()}: publishers are blocked ({num(a.value)} against a limit of {num(a.limit)}).
        </p>
      ))}
      {limited.length > 0 && (
        <p class="banner warn" role="status" data-testid="rate-limit-banner">
          Rate limits refused publishes: {limited.map(([rule, n]) => `${rule} (${num(n)})`).join(', ')}.
        </p>
      )}
      {o !== undefined && (
        <div class="stats">
          <Stat label="events stored" value={num(o.events)} testId="total-events" />
          <Stat label="on disk" value={bytes(o.bytes)} testId="total-bytes" />
          <Stat label="accepted since start" value={num(o.publish.accepted)} testId="total-accepted" />
          <Stat label="streams" value={num(o.streams)} testId="total-streams" />
          <Stat label="exchanges" value={num(o.exchanges)} testId="total-exchanges" />
          <Stat label="groups" value={num(o.groups)} testId="total-groups" />
          <Stat label="ingest errors" value={num(o.ingestErrors.recorded)} testId="total-ingest-errors" />
          <Stat label="uptime" value={duration(o.uptimeSeconds)} testId="uptime" />
          {o.disk !== null && <Stat label={`disk free of ${bytes(o.disk.totalBytes)}; alarm below ${bytes(o.disk.limitBytes)}`} value={bytes(o.disk.freeBytes)} testId="disk-free" />}
        </div>
      )}
      <div class="charts">
        <Chart title="Ingest (events/s)" unit="events/s" times={r?.times ?? []} series={[{ label: 'accepted', values: r?.ingest ?? [], colorVar: '--accent' }]} />
        <Chart title="Delivery (events/s)" unit="events/s" times={r?.times ?? []} series={[{ label: 'delivered', values: r?.delivered ?? [], colorVar: '--ok' }]} />
      </div>
      {o !== undefined && (
        <>
          <h2>Listeners</h2>
          <Table label="Listeners" head={['door', 'connections', 'connections since start', 'messages', 'parse errors']}>
            {Object.entries(o.listeners).map(([name, l]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td class="n">{num(l.connections)}</td>
                <td class="n">{num(l.connectionsTotal)}</td>
                <td class="n">{num(l.messages)}</td>
                <td class="n">{num(l.parseErrors)}</td>
              </tr>
            ))}
          </Table>
          <p class="muted">
            Sluice <span data-testid="version">{o.version}</span> · data in <code>{o.dataDir}</code>
          </p>
        </>
      )}
    </Page>
  )
}
