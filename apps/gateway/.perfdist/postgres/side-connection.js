import { BackendMessageType as B, decodeDataRow, decodeErrorResponse, decodeRowDescription, encodeDescribe, encodeParse, encodeQuery, encodeSync, encodeTerminate, } from '@portcullis/protocol';
import { MessageReader } from './message-reader.js';
/**
 * A second upstream connection of a session, opened lazily with the same target credentials, for
 * the lookups masking needs (table names of result columns, the columns of a COPY). One request at
 * a time; it never carries client SQL to execution (only Parse/Describe of a COPY's source).
 */
export class SideConnection {
    constructor(open) {
        this.open = open;
        this.session = null;
        this.queue = Promise.resolve();
        this.closed = false;
    }
    conn() {
        if (!this.session) {
            this.session = this.open().then((up) => {
                const reader = new MessageReader(up.socket, up.framer);
                up.socket.resume();
                if (this.closed)
                    up.socket.destroy();
                return { up, reader };
            });
            this.session.catch(() => {
                this.session = null;
            });
        }
        return this.session;
    }
    serial(fn) {
        const p = this.queue.then(fn, fn);
        this.queue = p.catch(() => undefined);
        return p;
    }
    /** Runs a simple query and returns its rows as text. */
    query(sql) {
        return this.serial(async () => {
            const { up, reader } = await this.conn();
            up.socket.write(encodeQuery(sql));
            const rows = [];
            let error = null;
            for (;;) {
                const f = await reader.next(5000);
                if (f.type === B.DataRow)
                    rows.push(decodeDataRow(f.payload).map((v) => (v === null ? null : v.toString('utf8'))));
                else if (f.type === B.ErrorResponse)
                    error = new Error(decodeErrorResponse(f.payload).message);
                else if (f.type === B.ReadyForQuery)
                    break;
            }
            if (error)
                throw error;
            return rows;
        });
    }
    /** The result columns of `sql` (Parse + Describe; nothing is executed). */
    describe(sql) {
        return this.serial(async () => {
            const { up, reader } = await this.conn();
            up.socket.write(Buffer.concat([encodeParse({ name: '', query: sql }), encodeDescribe('statement', ''), encodeSync()]));
            let fields = null;
            let error = null;
            for (;;) {
                const f = await reader.next(5000);
                if (f.type === B.RowDescription)
                    fields = decodeRowDescription(f.payload).fields;
                else if (f.type === B.ErrorResponse)
                    error = new Error(decodeErrorResponse(f.payload).message);
                else if (f.type === B.ReadyForQuery)
                    break;
            }
            if (error)
                throw error;
            return fields;
        });
    }
    close() {
        this.closed = true;
        void this.session?.then(({ up, reader }) => {
            reader.detach();
            up.socket.end(encodeTerminate());
            setTimeout(() => up.socket.destroy(), 500).unref();
        }, () => undefined);
    }
}
//# sourceMappingURL=side-connection.js.map