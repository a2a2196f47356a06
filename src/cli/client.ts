// The commands that talk to a running server (publish, tail, redrive) share its address, the
// credentials and how a failure reads: a server that is not there, a refused login, an error
// answer, each in one line.

import { CliError, stringOption, type OptionSpec } from './args.js'

export const defaultUrl = (): string => process.env.SLUICE_URL ?? 'http://127.0.0.1:7400'

export const clientOptions = {
  url: { type: 'string', value: 'URL', doc: 'the server (default: $SLUICE_URL, or http://127.0.0.1:7400)' },
  user: { type: 'string', short: 'u', value: 'USER', doc: 'log in as USER (password: --password or $SLUICE_PASSWORD); an API key goes in $SLUICE_TOKEN' },
  password: { type: 'string', value: 'PASSWORD', doc: "USER's password (visible to other users of this machine: prefer $SLUICE_PASSWORD)" },
} as const satisfies Record<string, OptionSpec>

export const clientHelp = `Without --user or $SLUICE_TOKEN, a client on the server's own machine acts as guest when the server
allows it (auth.anonymous: loopback, the default).`

/** Node's fetch failing below HTTP: the system's reason (ECONNREFUSED, ENOTFOUND, ...). */
export function networkReason(err: unknown): string | undefined {
  if (!(err instanceof TypeError) || err.message !== 'fetch failed') return undefined
  const cause = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? 'the connection failed'
}

export class ServerClient {
  readonly url: string
  readonly #headers: Record<string, string>

  constructor(values: Readonly<Record<string, string | boolean | undefined>>) {
    const url = stringOption(values.url) ?? defaultUrl()
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new CliError(`--url takes an http:// or https:// URL, not "${url}"`)
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError(`--url takes an http:// or https:// URL, not "${url}"`)
    this.url = url.replace(/\/+$/, '')
    this.#headers = authHeaders(stringOption(values.user), stringOption(values.password))
  }

  /** One request; a server out of reach is a CliError, any answer is returned as it is. */
  async request(method: string, path: string, opts: { body?: string; contentType?: string; signal?: AbortSignal } = {}): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, {
        method,
        headers: { ...this.#headers, ...(opts.contentType !== undefined ? { 'content-type': opts.contentType } : {}) },
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
      })
    } catch (err) {
      const reason = networkReason(err)
      if (reason === undefined) throw err
      throw this.unreachable(reason)
    }
  }

  unreachable(reason: string): CliError {
    return new CliError(`cannot reach ${this.url}: is \`sluice serve\` running? (${reason})`, 2, 'set the address with --url or $SLUICE_URL')
  }

  /** An error answer as one line: status, code and message, and what to do about a refused login. */
  async failure(res: Response): Promise<CliError> {
    const text = await res.text()
    let line: string
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string } }
      line = `${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? text}`
    } catch {
      line = `${res.status}: ${text}`
    }
    const hint =
      res.status === 401 ? 'log in with --user (password from --password or $SLUICE_PASSWORD), or put an API key in $SLUICE_TOKEN' : res.status === 403 ? 'ask an administrator for the permission named above' : undefined
    return new CliError(line, 1, hint)
  }
}

/** Basic for --user, Bearer for $SLUICE_TOKEN, nothing otherwise (anonymous). */
function authHeaders(user: string | undefined, password: string | undefined): Record<string, string> {
  if (user !== undefined) {
    const secret = password ?? process.env.SLUICE_PASSWORD ?? ''
    return { authorization: `Basic ${Buffer.from(`${user}:${secret}`, 'utf8').toString('base64')}` }
  }
  const token = process.env.SLUICE_TOKEN
  return token !== undefined && token !== '' ? { authorization: `Bearer ${token}` } : {}
}
