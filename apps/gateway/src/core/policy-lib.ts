/**
 * The gateway's link to @portcullis/policy: typed at compile time (`typeof import(…)`, erased from the
 * build), loaded at run time on first use. Kept lazy so the data path can start — and refuse every
 * policy-bound session, failing closed — even when the policy module cannot load (its parser's WASM
 * failing): ConfigStore then marks every policy broken and sessions on them are refused.
 */
export type PolicyLib = typeof import('@portcullis/policy');
export type PolicyEngine = import('@portcullis/policy').PolicyEngine;
export type PolicyDocument = import('@portcullis/policy').PolicyDocument;

/** Loads and initialises the policy library once (its SQL parser is WASM); a failed load is tried again next call. */
export { policyEngine as loadPolicyLib } from '@portcullis/policy/loader';
