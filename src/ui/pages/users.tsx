import { Fragment } from 'preact'
import { useState } from 'preact/hooks'
import { api, enc, type Exchange, type Group, type Stream, type User } from '../api.js'
import { ErrorText, Page, Table, usePoll } from '../components.js'
import { Session, useSession, type Permission } from '../session.js'

interface Resources {
  exchanges: string[]
  streams: string[]
  groups: string[]
}

async function load(signal: AbortSignal): Promise<{ users: User[]; anonymous: string; resources: Resources }> {
  const [u, x, s, g] = await Promise.all([
    api<{ users: User[]; anonymous: string }>('/v1/users', { signal }),
    api<{ exchanges: Exchange[] }>('/v1/exchanges', { signal }),
    api<{ streams: Stream[] }>('/v1/streams', { signal }),
    api<{ groups: Group[] }>('/v1/groups', { signal }),
  ])
  return { ...u, resources: { exchanges: x.exchanges.map((e) => e.name), streams: s.streams.map((e) => e.name), groups: g.groups.map((e) => e.name) } }
}

/** What each permission lets a user do on each kind of resource (src/auth/operations.ts). */
const meaning: Readonly<Record<keyof Resources, Readonly<Record<Permission, string>>>> = {
  exchanges: { configure: 'declare, delete', write: 'publish', read: 'bind from' },
  streams: { configure: 'delete, redrive', write: 'bind to', read: 'read, tail' },
  groups: { configure: 'declare, reset, delete', write: '', read: 'consume, purge parked' },
}

const permissions: readonly Permission[] = ['configure', 'write', 'read']

function MayDo({ user, resources }: { user: User; resources: Resources }): preact.JSX.Element {
  // The same check the UI makes for the logged-in user, on this user's patterns and tags.
  const session = new Session({ username: user.username, tags: user.tags, method: 'password', patterns: user.patterns })
  if (session.admin) return <p data-testid="may-summary">Everything: tag administrator passes every check, and manages definitions and users.</p>
  const rows = (Object.keys(resources) as Array<keyof Resources>).flatMap((kind) =>
    resources[kind]
      .map((name) => ({ kind, name, may: permissions.filter((p) => meaning[kind][p] !== '' && session.can(p, name)) }))
      .filter((r) => r.may.length > 0),
  )
  return (
    <>
      <p data-testid="may-summary">
        {session.hasTag('monitoring') ? 'Tag monitoring: sees every listing, the overview and /metrics. ' : 'No monitoring tag: no listing, overview or /metrics. '}
        {rows.length === 0 ? 'No permission on any exchange, stream or group that exists now.' : `Permissions on ${rows.length} of the exchanges, streams and groups that exist now:`}
      </p>
      {rows.length > 0 && (
        <Table label={`What ${user.username} may do`} head={['kind', 'name', ...permissions, 'so may']}>
          {rows.map((r) => (
            <tr key={`${r.kind}/${r.name}`} data-testid={`may-${r.kind}-${r.name}`}>
              <td>{r.kind.slice(0, -1)}</td>
              <th scope="row">{r.name}</th>
              {permissions.map((p) => (
                <td key={p}>{r.may.includes(p) ? 'yes' : '—'}</td>
              ))}
              <td>{r.may.map((p) => meaning[r.kind][p]).join('; ')}</td>
            </tr>
          ))}
        </Table>
      )}
    </>
  )
}

/** The users of the configuration file, and what each may do with what exists now. */
export function UsersPage(): preact.JSX.Element {
  const data = usePoll(load, 0)
  const d = data.data
  return (
    <Page title="Users">
      <p class="muted">
        Users live in the configuration file (<code>auth.users</code>, <code>auth.apiKeys</code>): to add, change or remove one, edit the file and restart. Passwords, hashes and keys are never shown.
      </p>
      <ErrorText error={data.error} />
      {d !== undefined && (
        <>
          <p>
            Anonymous access: <strong>{d.anonymous === 'loopback' ? 'a client on this machine with no credentials is guest' : 'none'}</strong>.
          </p>
          {d.users.map((u) => (
            <section class="card" key={u.username} aria-labelledby={`user-${u.username}`} data-testid={`user-${u.username}`}>
              <h2 id={`user-${u.username}`}>{u.username}</h2>
              <dl class="facts">
                <dt>tags</dt>
                <dd>{u.tags.length === 0 ? '—' : u.tags.join(', ')}</dd>
                <dt>from</dt>
                <dd>{u.loopbackOnly ? 'this machine only (loopbackOnly)' : 'anywhere'}</dd>
                {permissions.map((p) => (
                  <Fragment key={p}>
                    <dt>{p}</dt>
                    <dd>
                      <code>{u.permissions[p] ?? 'nothing'}</code>
                    </dd>
                  </Fragment>
                ))}
                <dt>API keys</dt>
                <dd>{u.apiKeys.length === 0 ? '—' : u.apiKeys.join(', ')}</dd>
              </dl>
              <h3>What {u.username} may do</h3>
              <MayDo user={u} resources={d.resources} />
            </section>
          ))}
        </>
      )}
    </Page>
  )
}

/**
 * The names an anchored pattern spells out literally (`^(?:app-logs|audit)$`), so a user who may
 * not list streams still finds those it may read; undefined for a real pattern (`app-.*`).
 */
export function literalNames(anchored: string | null): string[] | undefined {
  if (anchored === null) return []
  const inner = /^\^\(\?:(.*)\)\$$/.exec(anchored)?.[1]
  if (inner === undefined) return undefined
  const bare = inner.replace(/^\^?\(?(?:\?:)?/, '').replace(/\)?\$?$/, '')
  if (!/^(?:[A-Za-z0-9_@-]|\\\.)+(?:\|(?:[A-Za-z0-9_@-]|\\\.)+)*$/.test(bare)) return undefined
  return bare.split('|').map((n) => n.replace(/\\\./g, '.'))
}

/**
 * The landing page of a user without the monitoring tag: the server refuses them every listing
 * and the overview, so the page offers what they may open by name instead.
 */
export function MyAccessPage(): preact.JSX.Element {
  const session = useSession()
  const [name, setName] = useState('')
  const readable = literalNames(session.who.patterns.read)
  return (
    <Page title={`Signed in as ${session.who.username}`}>
      <p data-testid="no-monitoring">
        User {session.who.username} has no monitoring tag: the overview and the lists of exchanges, streams and groups are not shown (the server refuses them). Pages of the streams and groups this user may read open by name.
      </p>
      {readable !== undefined && readable.length > 0 && (
        <>
          <h2>Streams and groups you may read</h2>
          <ul data-testid="readable">
            {readable.map((n) => (
              <li key={n}>
                <a href={`#/streams/${enc(n)}`}>{n}</a> (stream) · <a href={`#/groups/${enc(n)}`}>group {n}</a>
              </li>
            ))}
          </ul>
        </>
      )}
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault()
          location.hash = `#/streams/${enc(name)}`
        }}
      >
        <div class="fields">
          <label>
            Stream
            <input name="stream" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
        </div>
        <button type="submit">Open</button>
      </form>
    </Page>
  )
}
