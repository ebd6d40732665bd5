import type { AuthFailure } from '@portcullis/protocol';
import type { ActiveConfig, ResolvedPolicy } from '../config/config-store.js';
import { CredentialError, claimedSubject, verifyCredential } from '../auth/credential-verifier.js';
import type { AccessRefusalReason, AccessRequest, SessionGrant } from './session-core.types.js';

/** The core refused a session; `message` is safe to show the client (see AccessRefusalReason). */
export class AccessRefused extends Error {
  constructor(
    readonly reason: AccessRefusalReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AccessRefused';
  }
}

export interface AdmitDeps {
  config(): ActiveConfig | null;
  /** a refused credential: counted (by protocol) and recorded as auth.failed */
  authFailed(f: Omit<AuthFailure, 'surface'>, connection: string | null, protocol: string): void;
}

/**
 * Admits a session (SessionCore.authenticate): the credential verified against the config in force,
 * the connection of the module's protocol, its policy available. Throws AccessRefused.
 */
export async function admit(req: AccessRequest, deps: AdmitDeps): Promise<SessionGrant> {
  const config = deps.config();
  if (!config) throw new AccessRefused('no_config', 'the gateway has no configuration');
  let credential;
  try {
    credential = await verifyCredential(req.token, req.connection, config, req.proof);
  } catch (err) {
    if (!(err instanceof CredentialError)) throw err;
    deps.authFailed(
      { source: req.source, identity: claimedSubject(req.token) ?? (req.claimedUser || null), reason: err.reason, target: req.connection, detail: err.message },
      req.connection,
      req.protocol,
    );
    throw new AccessRefused(err.reason === 'unknown_connection' ? 'unknown_connection' : `auth_${err.reason}`, err.message, { cause: err });
  }
  const { claims, connection, expiresAt } = credential;
  // Checked after the credential, so a caller learns a connection's kind only with a valid credential for it.
  const kind: string = connection.kind ?? 'postgres';
  if (kind !== req.protocol) {
    throw new AccessRefused('wrong_protocol', `connection "${connection.name}" is a ${kind} connection, not ${req.protocol}`);
  }
  let policy: ResolvedPolicy | null = null;
  if (connection.policy) {
    policy = config.policies.get(connection.policy) ?? null;
    if (!policy) {
      throw new AccessRefused('policy_unavailable', `the policy of connection "${connection.name}" is not available on this gateway; sessions are refused until it is`);
    }
  }
  return { claims, connection, policy, config, expiresAt };
}
