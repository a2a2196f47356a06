// What Elasticsearch clients and shippers ask before their first `_bulk`: who is there (`GET /`),
// the license, the features, the cluster's health, index templates. Each answer is the smallest
// one that lets them go on to `_bulk`; docs/doors/elasticsearch.md lists them.

import { createHash } from 'node:crypto'

/** Every answer of the door carries it: the 8.x and 9.x clients refuse a 2xx answer without it. */
export const productHeader = { name: 'x-elastic-product', value: 'Elasticsearch' } as const

/**
 * The version `GET /` reports. 8.x clients and Beats, Logstash and Fluent Bit of 8.x accept it, and
 * the 9.x JavaScript client does not check it; a stable cluster name and uuid come from the node.
 */
export const reportedVersion = '8.19.0'

export function handshake(nodeName: string): Record<string, unknown> {
  const uuid = createHash('sha256').update(`sluice:${nodeName}`).digest('base64url').slice(0, 22)
  return {
    name: nodeName,
    cluster_name: 'sluice',
    cluster_uuid: uuid,
    version: {
      number: reportedVersion,
      build_flavor: 'default',
      build_type: 'sluice',
      build_hash: '0000000000000000000000000000000000000000',
      build_date: '2026-01-01T00:00:00.000Z',
      build_snapshot: false,
      lucene_version: '9.12.0',
      minimum_wire_compatibility_version: '7.17.0',
      minimum_index_compatibility_version: '7.0.0',
    },
    tagline: 'You Know, for Search',
  }
}

export function license(nodeName: string): Record<string, unknown> {
  return {
    license: {
      status: 'active',
      uid: handshake(nodeName).cluster_uuid,
      type: 'basic',
      issue_date: '2026-01-01T00:00:00.000Z',
      issue_date_in_millis: 1767225600000,
      max_nodes: 1000,
      max_resource_units: null,
      issued_to: 'sluice',
      issuer: 'elasticsearch',
      start_date_in_millis: -1,
    },
  }
}

/** No X-Pack features: Logstash and Beats then skip ILM and the other managed features. */
export function xpack(nodeName: string): Record<string, unknown> {
  return {
    build: { hash: '0000000000000000000000000000000000000000', date: '2026-01-01T00:00:00.000Z' },
    license: { uid: handshake(nodeName).cluster_uuid, type: 'basic', mode: 'basic', status: 'active' },
    features: { ilm: { available: false, enabled: false }, security: { available: false, enabled: false } },
    tagline: 'for the love of logs',
  }
}

export function clusterHealth(): Record<string, unknown> {
  return {
    cluster_name: 'sluice',
    status: 'green',
    timed_out: false,
    number_of_nodes: 1,
    number_of_data_nodes: 1,
    active_primary_shards: 0,
    active_shards: 0,
    relocating_shards: 0,
    initializing_shards: 0,
    unassigned_shards: 0,
    delayed_unassigned_shards: 0,
    number_of_pending_tasks: 0,
    number_of_in_flight_fetch: 0,
    task_max_waiting_in_queue_millis: 0,
    active_shards_percent_as_number: 100,
  }
}

/** Elasticsearch's error body, `{error: {root_cause, type, reason}, status}`. */
export function esError(status: number, type: string, reason: string): Record<string, unknown> {
  return { error: { root_cause: [{ type, reason }], type, reason }, status }
}

/** Index templates are not kept: a GET finds none, and a PUT is acknowledged and forgotten. */
export function templateMissing(name: string): Record<string, unknown> {
  return esError(404, 'resource_not_found_exception', `index template matching [${name}] not found`)
}
