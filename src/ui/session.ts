// What the logged-in user may do, from GET /v1/whoami: the UI hides what the server would refuse.
// The server still checks every request; this only spares a person buttons that cannot work.

import { createContext } from 'preact'
import { useContext } from 'preact/hooks'
import type { Who } from './api.js'

export type Permission = 'configure' | 'write' | 'read'

export class Session {
  readonly #patterns: Record<Permission, RegExp | null>

  constructor(readonly who: Who) {
    const compile = (p: string | null): RegExp | null => (p === null ? null : new RegExp(p))
    this.#patterns = { configure: compile(who.patterns.configure), write: compile(who.patterns.write), read: compile(who.patterns.read) }
  }

  get admin(): boolean {
    return this.who.tags.includes('administrator')
  }

  hasTag(tag: string): boolean {
    return this.admin || this.who.tags.includes(tag)
  }

  can(permission: Permission, name: string): boolean {
    return this.admin || (this.#patterns[permission]?.test(name) ?? false)
  }
}

export const SessionContext = createContext<Session | null>(null)

export function useSession(): Session {
  const s = useContext(SessionContext)
  if (s === null) throw new Error('no session')
  return s
}
