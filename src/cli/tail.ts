import { setTimeout as sleep } from 'node:timers/promises'
import { CliError, parseCommand, renderCommandHelp, stringOption, wholeNumber, type CommandSpec } from './args.js'
import { clientHelp, clientOptions, networkReason, ServerClient } from './client.js'

export const tailSpec: CommandSpec = {
  name: 'tail',
  summary: "print a stream's last events as NDJSON; -f follows new ones",
  positionals: [{ name: 'STREAM', required: true, doc: 'the stream to read' }],
  options: {
    limit: { type: 'string', short: 'n', value: 'N', doc: 'without --from: the last N events (default 10); with --from: at most N events' },
    from: { type: 'string', value: 'WHERE', doc: 'start at `earliest`, `latest`, an offset, or an ISO 8601 time instead of the last N' },
    follow: { type: 'boolean', short: 'f', doc: 'then wait for new events and print them as they come, until Ctrl-C' },
    ...clientOptions,
  },
  description: `Prints events as NDJSON, one a line: offset, timestamp, routing key, headers and body.
As Unix tail does, it prints the stream's last 10 events, or the last N with -n N. --from starts
elsewhere and prints everything from there (at most N with -n). With --follow it then waits for
new events until Ctrl-C, which ends it at once (exit code 0). A server that stops meanwhile is
waited for while it says it is stopping; one that is gone ends the tail with the offset to resume
from.

${clientHelp}`,
  examples: [
    'sluice tail app-logs                           # the last 10 events',
    'sluice tail app-logs -n 100 -f                 # the last 100, then new ones as they come',
    'sluice tail app-logs --from earliest           # everything the stream holds',
    'sluice tail app-logs --from 2024-05-01T12:00Z -n 50   # 50 events from that time on',
    'sluice tail app-logs --from latest -f          # only what arrives from now on',
    'sluice tail app-logs -f | jq .body             # bodies only',
  ],
}

interface Page {
  readonly events: unknown[]
  readonly nextOffset: number
  readonly startOffset: number
  readonly endOffset: number
}

/** How long one poll waits for new events while following: below the server's default ceiling (30 s). */
const followWaitMs = 10_000
/** What one request asks for at most: the server's default ceiling (server.http.maxReadEvents). */
const pageMax = 1000

function checkFrom(from: string): void {
  if (from === 'earliest' || from === 'latest' || /^\d+$/.test(from)) return
  if (/^-\d+$/.test(from)) throw new CliError(`--from takes an offset from 0 up, not ${from}; for the last N events use -n N`)
  if (!Number.isNaN(Date.parse(from))) return
  throw new CliError(`--from takes earliest, latest, an offset or an ISO 8601 time (2024-05-01T12:00:00Z), not "${from}"`)
}

export async function tail(args: readonly string[]): Promise<number> {
  const p = parseCommand(tailSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(tailSpec))
    return 0
  }
  const stream = p.positionals[0]!
  const limit = wholeNumber(p.values.limit, '--limit')
  const fromOption = stringOption(p.values.from)
  if (fromOption !== undefined) checkFrom(fromOption)
  const follow = p.values.follow === true
  const client = new ServerClient(p.values)

  // Ctrl-C ends a tail at once: the long poll in flight is abandoned, not waited out.
  const interrupted = new AbortController()
  const onInterrupt = (): void => interrupted.abort()
  process.once('SIGINT', onInterrupt)
  let from = fromOption ?? 'latest'
  let reached = false
  const read = async (max: number, waitMs: number): Promise<Page | 'stopping'> => {
    let res: Response
    try {
      res = await client.request('GET', `/v1/streams/${encodeURIComponent(stream)}/events?from=${encodeURIComponent(from)}&limit=${max}${waitMs > 0 ? `&waitMs=${waitMs}` : ''}`, { signal: interrupted.signal })
    } catch (err) {
      // Once the server was there, its going away is said with where to resume.
      if (reached && err instanceof CliError && !interrupted.signal.aborted) throw lost(client, stream, from, follow, err)
      throw err
    }
    reached = true
    // A server starting or stopping answers 503 with Retry-After: a follower waits it out.
    if (res.status === 503 && follow) {
      await res.body?.cancel()
      const seconds = Number(res.headers.get('retry-after') ?? '1')
      await sleep(Math.min(Number.isFinite(seconds) && seconds > 0 ? seconds : 1, 5) * 1000, undefined, { signal: interrupted.signal })
      return 'stopping'
    }
    if (res.status !== 200) throw await client.failure(res)
    try {
      return (await res.json()) as Page
    } catch (err) {
      const reason = networkReason(err) ?? (err as Error).message
      if (interrupted.signal.aborted) throw err
      throw lost(client, stream, from, follow, new CliError(reason))
    }
  }

  try {
    let remaining: number
    if (fromOption === undefined) {
      // The last N: where the stream ends now, less N.
      let head: Page | 'stopping'
      while ((head = await read(1, 0)) === 'stopping');
      const n = limit ?? 10
      from = String(Math.max(head.startOffset, head.endOffset - n))
      remaining = follow ? Infinity : n
    } else {
      if (fromOption === 'latest' && !follow) {
        process.stderr.write('sluice tail: nothing to print: --from latest starts after the last event; add --follow to wait for new ones\n')
        return 0
      }
      remaining = limit ?? Infinity
    }
    while (remaining > 0) {
      const page = await read(Math.min(pageMax, remaining), follow ? followWaitMs : 0)
      if (page === 'stopping') continue
      let out = ''
      for (const e of page.events) out += `${JSON.stringify(e)}\n`
      if (out !== '') process.stdout.write(out)
      remaining -= page.events.length
      from = String(page.nextOffset)
      if (!follow && (page.events.length === 0 || page.nextOffset >= page.endOffset)) break
    }
    return 0
  } catch (err) {
    if (interrupted.signal.aborted) return 0
    throw err
  } finally {
    process.off('SIGINT', onInterrupt)
  }
}

function lost(client: ServerClient, stream: string, from: string, follow: boolean, err: CliError): CliError {
  const reason = /\(([^()]+)\)$/.exec(err.message)?.[1] ?? err.message
  return new CliError(`lost the server at ${client.url} (${reason}); resume with: sluice tail ${stream} --from ${from}${follow ? ' --follow' : ''}`, 1)
}
