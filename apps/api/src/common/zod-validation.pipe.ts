import { Injectable, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { ValidationError } from './errors.js';

/** `path: message` per issue; unknown keys are named so the caller sees which field to drop. */
export function describeZodIssues(error: z.ZodError, root = '(body)'): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.map(String).join('.') : root;
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length ? `${path}.` : '';
      return issue.keys.map((k) => `${prefix}${k}: unknown field`).join('; ');
    }
    if (issue.code === 'invalid_type') {
      // zod: "Invalid input: expected number, received string"; a missing field is "received undefined".
      const text = issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, ' (required)');
      return `${path}: ${text}`;
    }
    return `${path}: ${issue.message}`;
  });
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, root?: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(describeZodIssues(r.error, root));
  return r.data;
}

/** Validates one argument (body, query, param) with a zod schema; strict schemas reject unknown fields. */
@Injectable()
export class ZodValidationPipe<T extends z.ZodType> implements PipeTransform<unknown, z.infer<T>> {
  /** `label` names the value in messages when it is not a body (a path parameter, a query field). */
  constructor(
    private readonly schema: T,
    private readonly label?: string,
  ) {}

  transform(value: unknown): z.infer<T> {
    return parseOrThrow(this.schema, this.label ? value : (value ?? {}), this.label);
  }
}
