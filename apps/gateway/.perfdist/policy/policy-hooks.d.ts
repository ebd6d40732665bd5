import type { ResolvedPolicy } from '../config/config-store.js';
import type { Logger } from '../logger.js';
import type { SideConnection } from '../postgres/side-connection.js';
import type { PolicyLib } from './policy-lib.js';
import type { SessionHooks } from './session-hooks.js';
export interface PolicyHooksOptions {
    policy: ResolvedPolicy;
    lib: PolicyLib;
    maskingKey: Buffer;
    /** lazily opened side connection to the target, for table names and COPY layouts */
    side: SideConnection;
    logger: Logger;
}
/**
 * The default SessionHooks: decisions from the connection's PolicyEngine, masking plans from
 * createMaskingPlan. Fails closed: an engine that throws blocks, a plan that cannot be built refuses.
 *
 * Table names: RowDescription gives table OIDs only. They are resolved to `schema.table` through the
 * session's side connection (one query per new OID, cached for the session) so table-qualified
 * masking rules apply; if that lookup fails, `table` is left out and column-name rules and
 * detectors still apply.
 */
export declare function createPolicyHooks(opts: PolicyHooksOptions): SessionHooks & {
    close(): void;
};
/**
 * The query whose columns a `COPY ... TO STDOUT` sends: `COPY (query) TO` → query;
 * `COPY table [(cols)] TO` → `SELECT cols FROM table`. null for anything else (COPY FROM...).
 */
export declare function copySource(sql: string): string | null;
/**
 * `COPY ... TO STDOUT <options>` split into the query its columns come from (see copySource) and
 * the text after `TO STDOUT` (options, trimmed). The subquery match is greedy, so `options` is what
 * follows the last `) TO STDOUT`: anything cleverer leaves a source that does not describe (refused).
 */
export declare function parseCopyTo(sql: string): {
    source: string;
    options: string;
} | null;
/** No COPY options but (at most) `[WITH] (FORMAT text)`: the output is the text format the masker reads. */
export declare function isDefaultTextCopy(options: string): boolean;
