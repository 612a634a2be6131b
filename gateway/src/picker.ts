import { RoundRobin, type Instance } from '@stack/shared';
import type { OutlierDetector } from './outlier.js';

export const instanceKey = (i: Instance) => `${i.address}:${i.port}`;

/**
 * Round robin over a service's passing instances, leaving out ones already
 * tried for this request and ones passive health has ejected. When every
 * untried instance is ejected it tries them anyway: a guess beats a 503.
 */
export class Picker {
  #rr = new RoundRobin();

  constructor(private readonly outliers: OutlierDetector) {}

  pick(service: string, instances: readonly Instance[], tried: ReadonlySet<string>): Instance | undefined {
    const untried = (i: Instance) => tried.has(instanceKey(i));
    return (
      this.#rr.pick(service, instances, (i) => untried(i) || this.outliers.isEjected(instanceKey(i))) ??
      this.#rr.pick(service, instances, untried)
    );
  }
}
