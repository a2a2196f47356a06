import { readdir, readFile, rm, truncate } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Cuts a stream's log inside the batch that holds `offset`, as a power cut under `fsync: never`
 * (or an operator's `fsck --repair`) leaves it: that batch and everything after it are gone.
 * Later segment files are deleted and the clean-shutdown marker removed, so recovery must look.
 * Returns the base offset of the cut batch: the log's end after recovery.
 */
export async function cutLogAt(streamDir: string, offset: number): Promise<number> {
  const names = (await readdir(streamDir)).filter((n) => n.endsWith('.log')).sort()
  await rm(join(streamDir, '.clean-shutdown'), { force: true })
  for (let i = 0; i < names.length; i++) {
    const file = join(streamDir, names[i]!)
    const bytes = await readFile(file)
    for (let p = 0; p + 48 <= bytes.length; ) {
      const length = bytes.readUInt32BE(p)
      const base = Number(bytes.readBigUInt64BE(p + 12))
      const count = bytes.readUInt32BE(p + 20)
      if (offset < base + count) {
        // Mid-batch: the length field survives, the records do not.
        await truncate(file, p + Math.min(length - 1, 30))
        for (const later of names.slice(i + 1)) {
          await rm(join(streamDir, later), { force: true })
          await rm(join(streamDir, later.replace(/\.log$/, '.index')), { force: true })
          await rm(join(streamDir, later.replace(/\.log$/, '.timeindex')), { force: true })
        }
        return base
      }
      p += length
    }
  }
  throw new Error(`offset ${offset} is not in ${streamDir}`)
}
