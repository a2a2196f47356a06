import { stat } from 'node:fs/promises'
import { ClassicLevel } from 'classic-level'
import { errors } from '../errors.js'

/** A hold on a data dir's metadata store: while it is held, no server can open the data dir. */
export interface DataDirLock {
  release(): Promise<void>
}

/**
 * Takes the lock a running server holds on its data dir (LevelDB's lock on the metadata store),
 * for offline tools that change files under it (`sluice fsck --repair`): refused with
 * SLUICE_ERR_META_LOCKED while a server runs there, and held until released so none starts
 * meanwhile. A data dir with no store yet has nothing to lock.
 */
export async function lockMetaStore(dir: string): Promise<DataDirLock> {
  const exists = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  )
  if (!exists) return { release: async () => undefined }
  const db = new ClassicLevel(dir, { createIfMissing: false })
  try {
    await db.open()
  } catch (err) {
    // classic-level reports a held lock as LEVEL_DATABASE_NOT_OPEN whose cause is LEVEL_LOCKED.
    const cause = (err as { cause?: { code?: unknown } }).cause
    if (cause?.code === 'LEVEL_LOCKED') throw errors.metaLocked(dir, cause)
    throw errors.metaOpen(dir, err)
  }
  return { release: () => db.close() }
}
