import assert from 'node:assert/strict'
import type { UserTag } from '../config/index.js'
import type { Identity } from './identity.js'
import { operations, type Need, type Operation, type OperationSpec, type Permission, type Resource, type ResourcesOf } from './operations.js'

/** Why an operation was refused: what it needed, on what. HTTP sends these as the 403's details. */
export interface Denial {
  readonly operation: Operation
  /** The permission, or the tag, that was missing. */
  readonly permission: Permission | UserTag
  readonly resource: Resource
  /** For logs and the error message; names the user, never a secret. */
  readonly message: string
}

const kindFits = (need: Need, resource: Resource): boolean => need.kind.split('|').includes(resource.kind)

/**
 * The one place that decides who may do what. Every door asks it, with the operation from the one
 * table (operations.ts) and the resources that operation names, so a permission means the same on
 * HTTP, AMQP and every door after them.
 */
export class Authorizer {
  readonly #denials = new Map<string, { door: string; operation: Operation; count: number }>()

  /** Whether the identity holds a permission on a named resource; administrators hold every one. */
  can(identity: Identity, permission: Permission, resource: Resource): boolean {
    if (identity.tags.has('administrator')) return true
    return identity.patterns[permission]?.test(resource.name) ?? false
  }

  /** Whether the identity has a tag; administrator counts as every tag. */
  hasTag(identity: Identity, tag: UserTag): boolean {
    return identity.tags.has(tag) || identity.tags.has('administrator')
  }

  /** undefined when the identity may do the operation on these resources; else the first thing it lacks. */
  authorize<O extends Operation>(identity: Identity, operation: O, resources: ResourcesOf<O>): Denial | undefined {
    const spec: OperationSpec = operations[operation]
    if (identity.tags.has('administrator')) return undefined
    if (spec.tag !== undefined && !this.hasTag(identity, spec.tag.tag)) {
      const resource: Resource = { kind: 'broker', name: spec.tag.resource }
      return { operation, permission: spec.tag.tag, resource, message: `user "${identity.username}" needs tag ${spec.tag.tag} for ${operation}` }
    }
    if (spec.orTag !== undefined && this.hasTag(identity, spec.orTag)) return undefined
    const byRole = resources as Readonly<Record<string, Resource>>
    for (const need of spec.needs) {
      const resource = byRole[need.role]
      assert.ok(resource !== undefined && kindFits(need, resource), `${operation}: resource for role ${need.role} must be a ${need.kind}`)
      if (!this.can(identity, need.permission, resource)) {
        return {
          operation,
          permission: need.permission,
          resource: { kind: resource.kind, name: resource.name },
          message: `user "${identity.username}" has no ${need.permission} permission on ${resource.kind} "${resource.name}" (${operation})`,
        }
      }
    }
    return undefined
  }

  /**
   * Counts a refusal a door answered (sluice_auth_denials_total). Doors call it once per refused
   * request or command; `authorize` itself counts nothing, since a door may ask it to choose a path.
   */
  refused(door: string, denial: Denial): void {
    const id = `${door}\0${denial.operation}`
    const entry = this.#denials.get(id)
    if (entry === undefined) this.#denials.set(id, { door, operation: denial.operation, count: 1 })
    else entry.count++
  }

  /** Refused operations so far, by door and operation: sluice_auth_denials_total. */
  denialCounts(): Iterable<{ readonly door: string; readonly operation: Operation; readonly count: number }> {
    return this.#denials.values()
  }
}
