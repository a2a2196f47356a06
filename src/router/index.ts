// The router's public surface; tables, the trie and the scratch collector stay private.
export { bindingFromId, bindingId, exchangeConflict, normalizeBinding, Router } from './router.js'
export { compileTemplate, mayMiss, missingFieldWord, type RoutingKeyTemplate } from './template.js'
export type { BindingDef, ExchangeDef, ExchangeType, HeaderValue, RouteResult, UnroutablePolicy } from './types.js'
