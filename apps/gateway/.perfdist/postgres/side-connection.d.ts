import { type RowField } from '@portcullis/protocol';
import type { UpstreamSession } from './upstream.js';
/**
 * A second upstream connection of a session, opened lazily with the same target credentials, for
 * the lookups masking needs (table names of result columns, the columns of a COPY). One request at
 * a time; it never carries client SQL to execution (only Parse/Describe of a COPY's source).
 */
export declare class SideConnection {
    private readonly open;
    private session;
    private queue;
    private closed;
    constructor(open: () => Promise<UpstreamSession>);
    private conn;
    private serial;
    /** Runs a simple query and returns its rows as text. */
    query(sql: string): Promise<(string | null)[][]>;
    /** The result columns of `sql` (Parse + Describe; nothing is executed). */
    describe(sql: string): Promise<RowField[] | null>;
    close(): void;
}
