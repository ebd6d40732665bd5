import {
  approvalConsumeResultSchema, approvalDecisionSchema, SignatureError, verifyCompactJws,
  type ApprovalConsumeResult, type ApprovalDecision, type JwsKeyCache,
} from '@portcullis/protocol';

/** A message that claims to come from the api or the approvals app but is not signed by a key of the snapshot. */
export class ForgedMessageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
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
  private readonly cache: JwsKeyCache = new Map();

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

  // async: callers await it like the jose verifier it replaced; the check itself is synchronous
  private async verify(jws: string): Promise<unknown> {
    try {
      // Decisions carry no `typ`: a gateway credential (typ JWT) or a config snapshot never passes for one.
      return JSON.parse(verifyCompactJws(jws, this.keys(), null, this.cache).toString('utf8')) as unknown;
    } catch (err) {
      if (err instanceof SignatureError) throw new ForgedMessageError(err.message, { cause: err });
      throw new ForgedMessageError('signed payload is not JSON', { cause: err });
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
