import { spawnSync } from 'node:child_process'
import { mkdtemp, open, rm, statfs } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'

/**
 * A real small disk: a tmpfs of `bytes` mounted on a fresh directory, unmounted (and the
 * directory removed) when the test finishes. Needs root (or CAP_SYS_ADMIN); fails loudly without.
 * Whatever runs on it must be closed by the test before it ends, or the unmount is lazy.
 */
export async function mountTmpfs(bytes: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-tmpfs-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { encoding: 'utf8' })
  if (r.status !== 0) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`mount -t tmpfs failed (the full-disk tests need root or CAP_SYS_ADMIN): ${r.error?.message ?? r.stderr}`)
  }
  onTestFinished(async () => {
    const u = spawnSync('umount', [dir], { encoding: 'utf8' })
    if (u.status !== 0) spawnSync('umount', ['-l', dir])
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** Writes zeros to `path` until about `leaveBytes` are free on its disk; returns the bytes written. */
export async function fillDisk(path: string, dir: string, leaveBytes: number): Promise<number> {
  const fh = await open(path, 'a')
  const chunk = Buffer.alloc(64 * 1024)
  let written = 0
  try {
    for (;;) {
      const room = (await freeBytes(dir)) - leaveBytes
      if (room <= 0) break
      try {
        const { bytesWritten } = await fh.write(chunk, 0, Math.min(chunk.length, room))
        written += bytesWritten
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
        throw err
      }
    }
  } finally {
    await fh.close()
  }
  return written
}
