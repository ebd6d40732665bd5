import { compactVerify, importJWK } from 'jose';
import { approvalConsumeResultSchema, approvalDecisionSchema } from '@portcullis/protocol';
/** A message that claims to come from the api or the approvals app but is not signed by a key of the snapshot. */
export class ForgedMessageError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = 'ForgedMessageError';
    }
}
/**
 * Verifies compact JWS (EdDSA) against the snapshot's verificationKeys, chosen by the `kid` of the
 * protected header. Imported keys are cached per kid; the key list is read on every call, so a
 * snapshot with rotated keys takes effect at once.
 */
export class DecisionVerifier {
    constructor(keys) {
        this.keys = keys;
        this.cache = new Map();
    }
    async decision(body, approvalId) {
        const payload = await this.verify(extractJws(body));
        const r = approvalDecisionSchema.safeParse(payload);
        if (!r.success)
            throw new ForgedMessageError('signed payload is not an approval decision');
        if (r.data.approvalId !== approvalId)
            throw new ForgedMessageError(`decision for ${r.data.approvalId} arrived on the subject of ${approvalId}`);
        return r.data;
    }
    async consumeResult(body, nonce) {
        const payload = await this.verify(extractJws(body));
        const r = approvalConsumeResultSchema.safeParse(payload);
        if (!r.success)
            throw new ForgedMessageError('signed payload is not a consume result');
        if (r.data.nonce !== nonce)
            throw new ForgedMessageError('consume result answers another request (nonce mismatch)');
        return r.data;
    }
    async verify(jws) {
        try {
            const { payload } = await compactVerify(jws, async (header) => {
                if (header.alg !== 'EdDSA')
                    throw new ForgedMessageError(`unexpected alg ${header.alg}`);
                const kid = header.kid;
                const jwk = kid ? this.keys().find((k) => k.kid === kid) : undefined;
                if (!kid || !jwk)
                    throw new ForgedMessageError(`unknown signing key ${kid ?? '(none)'}`);
                const text = JSON.stringify(jwk);
                const hit = this.cache.get(kid);
                if (hit && hit.jwk === text)
                    return hit.key;
                const key = await importJWK(jwk, 'EdDSA');
                this.cache.set(kid, { jwk: text, key });
                return key;
            });
            return JSON.parse(new TextDecoder().decode(payload));
        }
        catch (err) {
            if (err instanceof ForgedMessageError)
                throw err;
            throw new ForgedMessageError('signature does not verify', { cause: err });
        }
    }
}
function extractJws(body) {
    try {
        const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
        const parsed = JSON.parse(text);
        if (typeof parsed.jws === 'string' && parsed.jws.length < 64 * 1024)
            return parsed.jws;
    }
    catch {
        /* fall through */
    }
    throw new ForgedMessageError('message is not {"jws": "..."}');
}
//# sourceMappingURL=decision-verifier.js.map