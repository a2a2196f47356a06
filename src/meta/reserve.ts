import { randomFillSync } from 'node:crypto'
import { open, rename, rm, stat, statfs } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Room the metadata store needs to open. LevelDB replays its write-ahead log into a new table at
 * open, then writes a new manifest and a new log: on a full disk that open fails, and the server
 * cannot start. The write-ahead log is flushed to a table once it holds the write buffer (4 MiB
 * by default), so the replay writes at most about that much; twice that leaves room for the
 * manifest, the fresh log and the first writes.
 */
export const metaReserveBytes = 8 * 1024 * 1024

/** The reserve sits beside the store's directory: `<dataDir>/meta.reserve`. */
export const reservePath = (metaDir: string): string => `${metaDir}.reserve`

const diskFullCodes = new Set(['ENOSPC', 'EDQUOT'])

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/**
 * Before the store opens: when the disk is short (less than twice the reserve free), deletes the
 * reserve so the open finds the room it needs. With plenty free the reserve is left alone.
 * Returns the bytes given back.
 */
export async function releaseReserve(path: string, bytes: number): Promise<number> {
  await rm(`${path}.tmp`, { force: true })
  let size: number
  try {
    size = (await stat(path)).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  if ((await freeBytes(dirname(path))) >= 2 * bytes) return 0
  await rm(path, { force: true })
  return size
}

/**
 * After the store opened: makes sure the reserve is in place for the next start. It is written
 * (not merely sized, since a sparse file reserves nothing) with bytes that do not compress away,
 * and only when at least twice its size is free: on a tight disk the server itself must not take
 * the last bytes. Returns whether a full reserve is in place.
 */
export async function ensureReserve(path: string, bytes: number): Promise<boolean> {
  try {
    if ((await stat(path)).size >= bytes) return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if ((await freeBytes(dirname(path))) < 2 * bytes) return false
  const tmp = `${path}.tmp`
  const chunk = Buffer.allocUnsafe(Math.min(bytes, 1024 * 1024))
  try {
    const fh = await open(tmp, 'w')
    try {
      for (let written = 0; written < bytes; ) {
        randomFillSync(chunk)
        const n = Math.min(chunk.length, bytes - written)
        const { bytesWritten } = await fh.write(chunk, 0, n, written)
        written += bytesWritten
      }
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    return true
  } catch (err) {
    await rm(tmp, { force: true })
    if (diskFullCodes.has((err as NodeJS.ErrnoException).code ?? '')) return false
    throw err
  }
}
