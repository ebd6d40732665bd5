import { accessCallerOf, type GatewayTokenClaims } from '@portcullis/protocol';

/** setTimeout holds at most ~24.8 days: a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `review` when the access grant a credential rests on ends (claim `gexp`), so a session on a
 * time-boxed grant is asked the access rule again at that moment rather than at the next config
 * change. Nothing is armed for a credential without a grant. Returns the cancel function.
 */
export function atGrantEnd(credential: { claims: Pick<GatewayTokenClaims, 'groups' | 'grant' | 'gexp'>; expiresAt: number | null }, review: () => void): () => void {
  const until = accessCallerOf(credential.claims, credential.expiresAt).grants[0]?.until;
  if (until === undefined) return () => undefined;
  let timer: NodeJS.Timeout | null = null;
  const arm = (): void => {
    timer = setTimeout(() => {
      timer = null;
      if (Date.now() < until) return arm();
      review();
    }, Math.max(0, Math.min(until - Date.now(), MAX_TIMER_MS)));
    timer.unref();
  };
  arm();
  return () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
}
