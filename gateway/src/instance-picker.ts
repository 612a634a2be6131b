import { RoundRobin, type Instance } from '@stack/shared';
import { instanceKey } from './instance-meta.js';
import type { OutlierDetector } from './outlier.js';

/**
 * Round robin over a service's passing instances, leaving out ones already
 * tried for this request and ones passive health has ejected. A retry goes
 * to an instance on a Consul node the request has not failed on, when one is
 * left: a node that is dead or drained takes all its instances with it, and
 * Consul lists them for a few seconds more. When every untried instance is
 * ejected it tries them anyway: a guess beats a 503.
 */
export class InstancePicker {
  #rr = new RoundRobin();

  constructor(private readonly outliers: OutlierDetector) {}

  /** `failedNodes`: the Consul nodes of this request's failed attempts. */
  pick(service: string, instances: readonly Instance[], tried: readonly string[], failedNodes: readonly string[] = []): Instance | undefined {
    const wasTried = (i: Instance) => tried.length > 0 && tried.includes(instanceKey(i));
    const skip = (i: Instance) => wasTried(i) || this.outliers.isEjected(instanceKey(i));
    return (
      (failedNodes.length > 0 ? this.#rr.pick(service, instances, (i) => skip(i) || failedNodes.includes(i.node)) : undefined) ??
      this.#rr.pick(service, instances, skip) ??
      this.#rr.pick(service, instances, wasTried)
    );
  }

  /** Drops round-robin positions of services that left the table. */
  retain(services: Iterable<string>): void {
    this.#rr.retain(services);
  }
}
