import { compactVerify, importJWK, type JWK } from 'jose';
import { approvalConsumeResultSchema, approvalDecisionSchema, type ApprovalConsumeResult, type ApprovalDecision } from '@portcullis/protocol';

/** A message that claims to come from the api or the approvals app but is not signed by a key of the snapshot. */
export class ForgedMessageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ForgedMessageError';
  }
}

type KeyLike = Awaited<ReturnType<typeof importJWK>>;

/**
 * Verifies compact JWS (EdDSA) against the snapshot's verificationKeys, chosen by the `kid` of the
 * protected header. Imported keys are cached per kid; the key list is read on every call, so a
 * snapshot with rotated keys takes effect at once.
 */
export class DecisionVerifier {
  private readonly cache = new Map<string, { jwk: string; key: KeyLike }>();

  constructor(private readonly keys: () => readonly Record<string, unknown>[]) {}

  async decision(body: Uint8Array | string, approvalId: string): Promise<ApprovalDecision> {
    const payload = await this.verify(extractJws(body));
    const r = approvalDecisionSchema.safeParse(payload);
    if (!r.success) throw new ForgedMessageError('signed payload is not an approval decision');
    if (r.data.approvalId !== approvalId) throw new ForgedMessageError(`decision for ${r.data.approvalId} arrived on the subject of ${approvalId}`);
    return r.data;
  }

  async consumeResult(body: Uint8Array | string, nonce: string): Promise<ApprovalConsumeResult> {
    const payload = await this.verify(extractJws(body));
    const r = approvalConsumeResultSchema.safeParse(payload);
    if (!r.success) throw new ForgedMessageError('signed payload is not a consume result');
    if (r.data.nonce !== nonce) throw new ForgedMessageError('consume result answers another request (nonce mismatch)');
    return r.data;
  }

  private async verify(jws: string): Promise<unknown> {
    try {
      const { payload } = await compactVerify(jws, async (header) => {
        if (header.alg !== 'EdDSA') throw new ForgedMessageError(`unexpected alg ${header.alg}`);
        const kid = header.kid;
        const jwk = kid ? this.keys().find((k) => k.kid === kid) : undefined;
        if (!kid || !jwk) throw new ForgedMessageError(`unknown signing key ${kid ?? '(none)'}`);
        const text = JSON.stringify(jwk);
        const hit = this.cache.get(kid);
        if (hit && hit.jwk === text) return hit.key;
        const key = await importJWK(jwk as JWK, 'EdDSA');
        this.cache.set(kid, { jwk: text, key });
        return key;
      });
      return JSON.parse(new TextDecoder().decode(payload)) as unknown;
    } catch (err) {
      if (err instanceof ForgedMessageError) throw err;
      throw new ForgedMessageError('signature does not verify', { cause: err });
    }
  }
}

function extractJws(body: Uint8Array | string): string {
  try {
    const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
    const parsed = JSON.parse(text) as { jws?: unknown };
    if (typeof parsed.jws === 'string' && parsed.jws.length < 64 * 1024) return parsed.jws;
  } catch {
    /* fall through */
  }
  throw new ForgedMessageError('message is not {"jws": "..."}');
}
