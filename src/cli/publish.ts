import { createInterface } from 'node:readline'
import { CliError, parseCommand, renderCommandHelp, stringOption, type CommandSpec } from './args.js'
import { clientHelp, clientOptions, ServerClient } from './client.js'

export const publishSpec: CommandSpec = {
  name: 'publish',
  summary: 'publish NDJSON from stdin to an exchange',
  positionals: [{ name: 'EXCHANGE', required: true, doc: 'the exchange to publish to' }],
  options: {
    key: { type: 'string', short: 'k', value: 'KEY', doc: "routing key for every line (default: the exchange's template over each event)" },
    ...clientOptions,
  },
  description: `Reads one JSON event a line from stdin and publishes them, 1,000 lines (or 4 MiB) a request; each
request is stored whole or not at all. Prints the totals: lines, accepted, duplicates, unroutable.
A refused request names its lines; the lines before it are stored.

${clientHelp}`,
  examples: [
    'sluice publish logs < events.ndjson',
    'echo \'{"service":"web","level":"error","msg":"timeout"}\' | sluice publish logs',
    'sluice publish logs --key web.error < errors.ndjson',
  ],
}

const batchLines = 1000
const batchBytes = 4 * 1024 * 1024

export async function publish(args: readonly string[]): Promise<number> {
  const p = parseCommand(publishSpec, args)
  if (p.help) {
    process.stdout.write(renderCommandHelp(publishSpec))
    return 0
  }
  const exchange = p.positionals[0]!
  const key = stringOption(p.values.key)
  const client = new ServerClient(p.values)
  if (process.stdin.isTTY) throw new CliError('publish reads NDJSON from stdin: pipe or redirect it, e.g. sluice publish logs < events.ndjson')
  const path = `/v1/exchanges/${encodeURIComponent(exchange)}/publish${key === undefined ? '' : `?routingKey=${encodeURIComponent(key)}`}`
  const totals = { accepted: 0, duplicates: 0, unroutable: 0 }
  let lines: string[] = []
  let bytes = 0
  let firstLine = 1
  let lineNo = 0
  const send = async (): Promise<void> => {
    if (lines.length === 0) return
    const res = await client.request('POST', path, { contentType: 'application/x-ndjson', body: lines.join('\n') })
    if (res.status !== 200) {
      const failure = await client.failure(res)
      throw new CliError(`lines ${firstLine}-${firstLine + lines.length - 1}: ${failure.message}${firstLine > 1 ? ` (lines 1-${firstLine - 1} were stored)` : ''}`, 1, failure.hint)
    }
    const r = (await res.json()) as typeof totals
    totals.accepted += r.accepted
    totals.duplicates += r.duplicates
    totals.unroutable += r.unroutable
    firstLine += lines.length
    lines = []
    bytes = 0
  }
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    lineNo++
    lines.push(line)
    bytes += Buffer.byteLength(line) + 1
    if (lines.length >= batchLines || bytes >= batchBytes) await send()
  }
  await send()
  process.stdout.write(`${JSON.stringify({ lines: lineNo, ...totals })}\n`)
  return 0
}
