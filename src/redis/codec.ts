/** Generic readers of Redis replies. Stored formats have their own modules (users-record, stream-entry,
 * campaign-hash). */

/**
 * A Redis reply's flat [name, value, name, value, ...] list (stream entry fields, XINFO, CONFIG GET) as a
 * record. The one place that walks such a list in pairs.
 */
export function flatRecord<V>(flat: readonly V[]): Record<string, V> {
  const out: Record<string, V> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]!
  return out
}
