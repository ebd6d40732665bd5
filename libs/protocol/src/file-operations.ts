/**
 * File operations of SFTP/SCP, as policy file rules name them (libs/policy command-guardrails.ts
 * says how a request maps to them). Here, not in libs/policy, because the api validates dry-run
 * bodies with them without loading the policy engine.
 */
export const FILE_OPERATIONS = ['read', 'write', 'remove', 'rename', 'mkdir', 'list', 'setstat', 'symlink'] as const;
export type FileOperation = (typeof FILE_OPERATIONS)[number];
