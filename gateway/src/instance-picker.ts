import { RoundRobin, type Instance } from '@stack/shared';
import type { OutlierDetector } from './outlier.js';

export const instanceKey = (i: Instance) => `${i.address}:${i.port}`;

/**
 * Round robin over a service's passing instances, leaving out ones already
 * tried for this request and ones passive health has ejected. When every
 * untried instance is ejected it tries them anyway: a guess beats a 503.
 */
export class InstancePicker {
  #rr = new RoundRobin();

  constructor(private readonly outliers: OutlierDetector) {}

  pick(service: string, instances: readonly Instance[], tried: readonly string[]): Instance | undefined {
    const wasTried = (i: Instance) => tried.length > 0 && tried.includes(instanceKey(i));
    return (
      this.#rr.pick(service, instances, (i) => wasTried(i) || this.outliers.isEjected(instanceKey(i))) ??
      this.#rr.pick(service, instances, wasTried)
    );
  }

  /** Drops round-robin positions of services that left the table. */
  retain(services: Iterable<string>): void {
    this.#rr.retain(services);
  }
}
