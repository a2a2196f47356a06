// The management UI: a page of the HTTP listener that reads and drives the broker through the
// public /v1 API only (docs/ui.md). Routes are URL fragments (#/streams/app-logs), so the server
// serves one page and every view can be bookmarked.

import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, authorizationFor, saveAuthorization, savedAuthorization, type Who } from './api.js'
import { ErrorText, message } from './components.js'
import { DeadLetterPage, DeadLettersPage } from './pages/dead-letters.js'
import { DefinitionsPage } from './pages/definitions.js'
import { MyAccessPage, UsersPage } from './pages/users.js'
import { ExchangePage, ExchangesPage } from './pages/exchanges.js'
import { GroupPage, GroupsPage } from './pages/groups.js'
import { OverviewPage } from './pages/overview.js'
import { PublishPage } from './pages/publish.js'
import { StreamPage, StreamsPage } from './pages/streams.js'
import { Session, SessionContext, useSession } from './session.js'
import './style.css'

function useHash(): string {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const on = (): void => setHash(location.hash)
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return hash
}

/** The pages, each with who may open it: a page the server would refuse is not offered. */
const nav: ReadonlyArray<readonly [string, string, (s: Session) => boolean]> = [
  ['#/', 'Overview', (s) => s.hasTag('monitoring')],
  ['#/exchanges', 'Exchanges', (s) => s.hasTag('monitoring')],
  ['#/streams', 'Streams', (s) => s.hasTag('monitoring')],
  ['#/groups', 'Groups', (s) => s.hasTag('monitoring')],
  ['#/dead-letters', 'Dead letters', (s) => s.hasTag('monitoring')],
  ['#/publish', 'Publish', (s) => s.admin || s.who.patterns.write !== null],
  ['#/users', 'Users', (s) => s.admin],
  ['#/definitions', 'Definitions', (s) => s.admin],
]

function View({ hash }: { hash: string }): preact.JSX.Element {
  const session = useSession()
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent)
  const [section, name] = parts
  const monitoring = session.hasTag('monitoring')
  switch (section) {
    case 'exchanges':
      return name === undefined ? <ExchangesPage /> : <ExchangePage key={name} name={name} />
    case 'streams':
      return name === undefined ? <StreamsPage /> : <StreamPage key={name} name={name} />
    case 'groups':
      return name === undefined ? <GroupsPage /> : <GroupPage key={name} name={name} />
    case 'dead-letters':
      return name === undefined ? <DeadLettersPage /> : <DeadLetterPage key={name} name={name} />
    case 'publish':
      return <PublishPage />
    case 'definitions':
      return <DefinitionsPage />
    case 'users':
      return <UsersPage />
    default:
      return monitoring ? <OverviewPage /> : <MyAccessPage />
  }
}

function Login({ onLogin, reason }: { onLogin: (who: Who) => void; reason: string | undefined }): preact.JSX.Element {
  const [user, setUser] = useState('')
  const [secret, setSecret] = useState('')
  const [kind, setKind] = useState<'password' | 'apiKey'>('password')
  const [error, setError] = useState<string | undefined>(undefined)
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    saveAuthorization(authorizationFor(user, secret, kind))
    try {
      onLogin(await api<Who>('/v1/whoami'))
    } catch (err) {
      saveAuthorization(null)
      setError(err instanceof ApiError && err.status === 401 ? 'Those credentials were refused.' : message(err))
    }
  }
  return (
    <main class="login">
      <form class="card" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <h1 id="login-title">Sluice</h1>
        {reason !== undefined && <p class="muted">{reason}</p>}
        <fieldset>
          <legend>Log in with</legend>
          <label class="inline">
            <input type="radio" name="kind" checked={kind === 'password'} onChange={() => setKind('password')} /> user and password
          </label>
          <label class="inline">
            <input type="radio" name="kind" checked={kind === 'apiKey'} onChange={() => setKind('apiKey')} /> API key
          </label>
        </fieldset>
        {kind === 'password' && (
          <label>
            User
            <input name="username" autoComplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} />
          </label>
        )}
        <label>
          {kind === 'password' ? 'Password' : 'API key'}
          <input name="password" type="password" autoComplete="current-password" required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
        </label>
        <button type="submit">Log in</button>
        <ErrorText error={error} />
      </form>
    </main>
  )
}

function App(): preact.JSX.Element {
  const hash = useHash()
  const [session, setSession] = useState<Session | null>(null)
  const [state, setState] = useState<'checking' | 'login' | 'in'>('checking')
  const [reason, setReason] = useState<string | undefined>(undefined)
  useEffect(() => {
    // With no saved credentials this asks as the anonymous loopback guest, when the server allows it.
    api<Who>('/v1/whoami').then(
      (who) => {
        setSession(new Session(who))
        setState('in')
      },
      (err: unknown) => {
        if (savedAuthorization() !== null) saveAuthorization(null)
        setReason(err instanceof ApiError && err.status === 401 ? 'This server needs a login.' : message(err))
        setState('login')
      },
    )
  }, [])
  if (state === 'checking') return <p class="muted">Loading…</p>
  if (state === 'login' || session === null)
    return (
      <Login
        reason={reason}
        onLogin={(who) => {
          setSession(new Session(who))
          setState('in')
        }}
      />
    )
  const current = `#/${hash.replace(/^#\/?/, '').split('/')[0] ?? ''}`
  return (
    <SessionContext.Provider value={session}>
      {/* Not href="#main": fragments are routes here, so the link moves focus itself. */}
      <a
        class="skip"
        href={hash === '' ? '#/' : hash}
        onClick={(e) => {
          e.preventDefault()
          document.getElementById('main')?.focus()
        }}
      >
        Skip to content
      </a>
      <header>
        <a class="brand" href="#/">
          Sluice
        </a>
        <nav aria-label="Pages">
          {nav
            .filter(([, , may]) => may(session))
            .map(([href, label]) => (
              <a key={href} href={href} aria-current={current === href || (href === '#/' && current === '#/') ? 'page' : undefined}>
                {label}
              </a>
            ))}
        </nav>
        <div class="who">
          <span data-testid="username">{session.who.username}</span>
          {session.who.method === 'anonymous' ? ' (anonymous)' : ''}{' '}
          <button
            type="button"
            class="link"
            onClick={() => {
              saveAuthorization(null)
              setSession(null)
              setReason(session.who.method === 'anonymous' ? 'Log in as another user.' : 'Logged out.')
              setState('login')
            }}
          >
            {session.who.method === 'anonymous' ? 'Log in' : 'Log out'}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <View hash={hash} />
      </main>
    </SessionContext.Provider>
  )
}

render(<App />, document.getElementById('app')!)
