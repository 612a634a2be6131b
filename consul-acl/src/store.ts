import { chownSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenStore } from './provision.js';

/**
 * Tokens as files: `<root>/<role>/token`. In the compose stack each role directory is its own
 * volume, mounted only by the service that needs it, so the gateway cannot read registrator's
 * token. A file is owned by its reader's uid with group 0 and mode 0440: the reader gets it as
 * owner, consul-acl-init (uid 0 without capabilities, so without DAC override) as group.
 */
export class FileTokenStore implements TokenStore {
  constructor(
    readonly root: string,
    /** role → uid of the process that reads the token; a role not listed here is not kept. */
    readonly owners: ReadonlyMap<string, number | null>,
  ) {}

  path(role: string): string {
    return join(this.root, role, 'token');
  }

  read(role: string): string | undefined {
    if (!this.owners.has(role)) return undefined;
    try {
      return readFileSync(this.path(role), 'utf8').trim() || undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  write(role: string, secret: string): void {
    if (!this.owners.has(role)) return;
    const dir = join(this.root, role);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `.token.${process.pid}`);
    writeFileSync(tmp, `${secret}\n`, { mode: 0o440 });
    const uid = this.owners.get(role);
    if (uid !== null && uid !== undefined) chownSync(tmp, uid, 0);
    renameSync(tmp, this.path(role));
  }
}
