// Identities and permissions, one model for every door (docs/security.md). Doors authenticate a
// client with the Authenticator, then ask the Authorizer before each operation from the one table.

export { Authenticator, type AuthenticatorOptions, type FailureReason, type LoginContext, type LoginResult } from './authenticator.js'
export { Authorizer, type Denial } from './authorizer.js'
export type { AuthMethod, Identity } from './identity.js'
export { isLoopback } from './address.js'
export { describeNeeds, operations, renderPermissionTable, type Operation, type OperationSpec, type Permission, type Resource, type ResourceKind, type ResourcesOf } from './operations.js'
export { hashApiKey, hashPassword } from './secrets.js'
