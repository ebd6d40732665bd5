/**
 * @portcullis/policy, loaded on first use: it brings the Postgres parser (WASM), which the api only needs
 * when a policy is written or evaluated, so boot stays fast.
 */
type PolicyLib = typeof import('@portcullis/policy');

let lib: Promise<PolicyLib> | null = null;

export function policyLib(): Promise<PolicyLib> {
  const loading =
    lib ??
    import('@portcullis/policy').catch((err: unknown) => {
      lib = null;
      throw err;
    });
  lib = loading;
  return loading;
}

let engineReady: Promise<void> | null = null;

/** The policy lib with its SQL parser initialised (once per process). */
export async function policyEngine(): Promise<PolicyLib> {
  const l = await policyLib();
  const ready =
    engineReady ??
    l.initPolicyEngine().catch((err: unknown) => {
      engineReady = null;
      throw err;
    });
  engineReady = ready;
  await ready;
  return l;
}
