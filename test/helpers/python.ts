import { spawnSync } from 'node:child_process'

/**
 * Debian's python3, where apt puts python3-celery, python3-kombu and python3-pika (the python3 on
 * PATH may be another interpreter, a pyenv shim). Throws naming the Debian package when the
 * module is missing: a missing client fails its test loudly, it never skips.
 */
export function debianPython(module: string, debianPackage: string): string {
  const python = '/usr/bin/python3'
  const r = spawnSync(python, ['-c', `import ${module}`], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${module} is not importable by ${python}: install the Debian package "${debianPackage}" (.ci/run does this with apt-get)${r.stderr ? `\n${r.stderr}` : ''}`)
  }
  return python
}
