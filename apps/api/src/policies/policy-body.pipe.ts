import { Injectable, type PipeTransform } from '@nestjs/common';
import yaml from 'js-yaml';
import { policyLib } from '@portcullis/policy/loader';
import { BadRequestError, ValidationError } from '../common/errors.js';

/** A policy document as received (JSON or YAML) and proven valid. `raw` is what gets stored. */
export interface ValidPolicyBody {
  raw: Record<string, unknown>;
  name: string;
}

/** YAML (application/yaml, text/yaml) arrives as text: safe-load it with the JSON schema (no custom tags, no dates). */
export function policyInput(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return yaml.load(body, { schema: yaml.JSON_SCHEMA, json: false });
  } catch (err) {
    const e = err as yaml.YAMLException;
    throw new BadRequestError(`malformed YAML body: ${e.reason ?? e.message}${e.mark ? ` at line ${e.mark.line + 1}, column ${e.mark.column + 1}` : ''}`, 'malformed_yaml');
  }
}

export async function validatePolicyDocument(input: unknown): Promise<ValidPolicyBody> {
  const { parsePolicyDocument, PolicyValidationError, policyDocumentSchema } = await policyLib();
  // The document schema strips unknown top-level keys; the api refuses them so a typo is not silently dropped.
  const known = new Set(Object.keys((policyDocumentSchema as unknown as { shape?: Record<string, unknown> }).shape ?? {}));
  const unknown = known.size ? Object.keys(input as object).filter((k) => !known.has(k)) : [];
  if (unknown.length) throw new ValidationError(unknown.map((k) => `${k}: unknown field`), 'invalid_policy');
  if (input === null || input === undefined || typeof input !== 'object' || Array.isArray(input)) {
    throw new ValidationError(['(body): expected a policy document object'], 'invalid_policy');
  }
  try {
    const doc = parsePolicyDocument(input);
    return { raw: input as Record<string, unknown>, name: doc.name };
  } catch (err: unknown) {
    if (err instanceof PolicyValidationError) {
      const issues = (err as { issues: { path: unknown; message: string }[] }).issues;
      throw new ValidationError(issues.map((i) => `${Array.isArray(i.path) ? i.path.join('.') : String(i.path)}: ${i.message}`), 'invalid_policy');
    }
    throw err;
  }
}

@Injectable()
export class PolicyBodyPipe implements PipeTransform<unknown, Promise<ValidPolicyBody>> {
  transform(value: unknown): Promise<ValidPolicyBody> {
    return validatePolicyDocument(policyInput(value));
  }
}
