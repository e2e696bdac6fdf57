import { collectDefaultMetrics, type Registry } from 'prom-client'

// prom-client exports these as gauges with a `_total` suffix, which the exposition format reserves for
// counters (`promtool check metrics` rejects them). The same numbers stay available, split by type, as
// nodejs_active_handles / nodejs_active_requests / nodejs_active_resources: sum them for the totals.
const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

/** prom-client's default process and Node.js series, minus the three misnamed gauges. API and worker use it. */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry })
  for (const name of MISNAMED) registry.removeSingleMetric(name)
}
