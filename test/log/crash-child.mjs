// Child process for the crash test: appends without end and prints every confirmed range as
// "ok <baseOffset> <lastOffset> <firstSeq>" so the parent knows exactly what was promised.
// Usage: node crash-child.mjs <dir> <fsync> <recordsPerAppend> <concurrency> <firstSeq>
import { openLog } from '../../dist/src/log/index.js'

const [dir, fsync, perAppendArg, concurrencyArg, firstSeqArg] = process.argv.slice(2)
const perAppend = Number(perAppendArg)
const concurrency = Number(concurrencyArg)
let seq = Number(firstSeqArg)

const log = await openLog(dir, { fsync, intervalMs: 2, segmentBytes: 256 * 1024 })
process.stdout.write(`ready ${log.endOffset}\n`)

function body(s) {
  // Repeating the sequence makes any torn or misplaced bytes visible to the parent's check.
  return Buffer.from(JSON.stringify({ seq: s, pad: `${s}:`.repeat(8) }))
}

async function worker() {
  for (;;) {
    const first = seq
    seq += perAppend
    const records = []
    for (let k = 0; k < perAppend; k++) records.push({ timestamp: Date.now(), key: `k.${first + k}`, body: body(first + k), json: true, id: `s-${first + k}` })
    const r = await log.append(records)
    process.stdout.write(`ok ${r.baseOffset} ${r.lastOffset} ${first}\n`)
  }
}

await Promise.all(Array.from({ length: concurrency }, worker))
