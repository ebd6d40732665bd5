import { type ApprovalConsumeResult, type ApprovalDecision } from '@portcullis/protocol';
/** A message that claims to come from the api or the approvals app but is not signed by a key of the snapshot. */
export declare class ForgedMessageError extends Error {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/**
 * Verifies compact JWS (EdDSA) against the snapshot's verificationKeys, chosen by the `kid` of the
 * protected header. Imported keys are cached per kid; the key list is read on every call, so a
 * snapshot with rotated keys takes effect at once.
 */
export declare class DecisionVerifier {
    private readonly keys;
    private readonly cache;
    constructor(keys: () => readonly Record<string, unknown>[]);
    decision(body: Uint8Array | string, approvalId: string): Promise<ApprovalDecision>;
    consumeResult(body: Uint8Array | string, nonce: string): Promise<ApprovalConsumeResult>;
    private verify;
}
