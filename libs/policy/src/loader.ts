/**
 * @portcullis/policy loaded on first use, for the apps (api, gateway): the library brings the Postgres
 * parser (WASM), which a process needs only once a policy is written or evaluated, so boot stays fast;
 * and a process whose parser cannot load still starts (the gateway then refuses policy-bound sessions,
 * failing closed). Import this entry (`@portcullis/policy/loader`), not the library: it loads nothing
 * until called. Types stay checked: `PolicyLib` is the library's own module type.
 */
export type PolicyLib = typeof import('./index.js');

let lib: Promise<PolicyLib> | null = null;
let engineReady: Promise<void> | null = null;

/** The library, imported once (a failed import is tried again on the next call). */
export function policyLib(): Promise<PolicyLib> {
  const loading =
    lib ??
    import('./index.js').catch((err: unknown) => {
      lib = null;
      throw err;
    });
  lib = loading;
  return loading;
}

/** The library with its SQL parser initialised, once per process (a failure is tried again on the next call). */
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
