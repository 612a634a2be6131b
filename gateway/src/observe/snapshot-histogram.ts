import type { Registry } from 'prom-client';

export interface HistogramSeries {
  labels: Record<string, string>;
  /** Per bucket (not cumulative), then +Inf. */
  buckets: readonly number[];
  sum: number;
  count: number;
}

/**
 * A histogram whose counts are kept elsewhere and read at scrape time, in prom-client's
 * exposition (the same lines its Histogram writes: _bucket{le} cumulative, _sum, _count).
 */
export function registerSnapshotHistogram(registry: Registry, o: { name: string; help: string; buckets: readonly number[]; read: () => HistogramSeries[] }): void {
  const metric = {
    name: o.name,
    help: o.help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const series of o.read()) {
        let acc = 0;
        o.buckets.forEach((le, i) => {
          acc += series.buckets[i]!;
          values.push({ metricName: `${o.name}_bucket`, labels: { le, ...series.labels }, value: acc });
        });
        values.push({ metricName: `${o.name}_bucket`, labels: { le: '+Inf', ...series.labels }, value: series.count });
        values.push({ metricName: `${o.name}_sum`, labels: series.labels, value: series.sum });
        values.push({ metricName: `${o.name}_count`, labels: series.labels, value: series.count });
      }
      return { name: o.name, help: o.help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
