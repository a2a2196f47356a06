import { parseCommand, renderCommandHelp, stringOption, wholeNumber, type CommandSpec } from './args.js'
import { clientHelp, clientOptions, ServerClient } from './client.js'

export const redriveSpec: CommandSpec = {
  name: 'redrive',
  summary: 'send dead-lettered events back to the exchanges they came from',
  positionals: [{ name: 'STREAM', required: true, doc: 'a dead-letter stream (its events carry x-death)' }],
  options: {
    limit: { type: 'string', short: 'n', value: 'N', doc: 'redrive at most N events (default 10000)' },
    reason: { type: 'string', value: 'REASON', doc: 'only events that died for this reason: rejected, expired, maxlen, delivery_limit' },
    group: { type: 'string', short: 'g', value: 'GROUP', doc: 'only events dead-lettered by this group' },
    ...clientOptions,
  },
  description: `Republishes the events of a dead-letter stream to the exchange and routing key of their latest
death, in offset order, with x-redrive-count raised by one. Each event is redriven once: the
server remembers what it sent, so running it again sends only what died since. A stream that
holds no dead-lettered events is refused. Prints {"redriven", "skipped", "remaining"}.

${clientHelp}`,
  examples: [
    'sluice redrive app-logs-dlq                    # everything not yet redriven',
    'sluice redrive app-logs-dlq --reason delivery_limit --group indexer -n 100',
  ],
}

export async function redrive(args: readonly string[]): Promise<number> {
  const p = parseCommand(redriveSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(redriveSpec))
    return 0
  }
  const stream = p.positionals[0]!
  const limit = wholeNumber(p.values.limit, '--limit')
  const reason = stringOption(p.values.reason)
  const group = stringOption(p.values.group)
  const client = new ServerClient(p.values)
  const filter = { ...(reason !== undefined ? { reason } : {}), ...(group !== undefined ? { group } : {}) }
  const body = { ...(limit !== undefined ? { limit } : {}), filter }
  const res = await client.request('POST', `/v1/streams/${encodeURIComponent(stream)}/redrive`, { contentType: 'application/json', body: JSON.stringify(body) })
  if (res.status !== 200) throw await client.failure(res)
  process.stdout.write(`${await res.text()}\n`)
  return 0
}
