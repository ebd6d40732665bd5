import { PgFramer } from '@portcullis/protocol';
/**
 * Pull-style reading of whole messages from a socket during short request/response phases
 * (upstream startup and authentication, side lookups). The relay does not use this: it is push-driven.
 */
export class MessageReader {
    constructor(socket, framer = new PgFramer({ startup: false, from: 'server' })) {
        this.socket = socket;
        this.framer = framer;
        this.waiting = null;
        this.error = null;
        this.onData = (chunk) => {
            this.framer.push(chunk);
            this.pump();
        };
        this.onEnd = () => this.fail(new Error('connection closed by the server'));
        this.onError = (err) => this.fail(err);
        this.attach(socket);
    }
    attach(socket) {
        this.socket = socket;
        socket.on('data', this.onData);
        socket.on('end', this.onEnd);
        socket.on('close', this.onEnd);
        socket.on('error', this.onError);
    }
    /** Stops listening (the framer keeps any bytes already read); pauses the socket so nothing is lost. */
    detach(pause = true) {
        if (pause)
            this.socket.pause();
        this.socket.off('data', this.onData);
        this.socket.off('end', this.onEnd);
        this.socket.off('close', this.onEnd);
        this.socket.off('error', this.onError);
    }
    /** Re-attaches to another socket (after a TLS upgrade). */
    switchTo(socket) {
        this.detach(false);
        this.attach(socket);
        socket.resume();
    }
    fail(err) {
        if (!this.error)
            this.error = err;
        if (this.waiting) {
            const w = this.waiting;
            this.waiting = null;
            w.reject(this.error);
        }
    }
    pump() {
        if (!this.waiting)
            return;
        let f;
        try {
            f = this.framer.next();
        }
        catch (err) {
            this.fail(err);
            return;
        }
        if (f) {
            const w = this.waiting;
            this.waiting = null;
            w.resolve(f);
        }
    }
    /** The next message; rejects when the connection fails or `timeoutMs` passes. */
    next(timeoutMs = 10_000) {
        const f = this.framer.next();
        if (f)
            return Promise.resolve(f);
        if (this.error)
            return Promise.reject(this.error);
        return new Promise((resolve, reject) => {
            const t = setTimeout(() => {
                this.waiting = null;
                reject(new Error('timed out waiting for the server'));
            }, timeoutMs);
            this.waiting = {
                resolve: (fr) => {
                    clearTimeout(t);
                    resolve(fr);
                },
                reject: (e) => {
                    clearTimeout(t);
                    reject(e);
                },
            };
        });
    }
    /** Reads one raw byte (SSLRequest answer), before any framed message. */
    static readByte(socket, timeoutMs = 10_000) {
        return new Promise((resolve, reject) => {
            const t = setTimeout(() => finish(new Error('timed out waiting for the server')), timeoutMs);
            const onData = (chunk) => {
                finish(null, { byte: chunk[0], rest: chunk.subarray(1) });
            };
            const onEnd = () => finish(new Error('connection closed by the server'));
            const finish = (err, v) => {
                clearTimeout(t);
                socket.off('data', onData);
                socket.off('end', onEnd);
                socket.off('error', onEnd);
                socket.pause();
                if (err)
                    reject(err);
                else
                    resolve(v);
            };
            socket.on('data', onData);
            socket.on('end', onEnd);
            socket.on('error', finish);
            socket.resume();
        });
    }
}
//# sourceMappingURL=message-reader.js.map