import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from './errors.js';
import { ZodValidationPipe } from './zod-validation.pipe.js';

const schema = z.strictObject({ name: z.string(), port: z.number().int().optional(), nested: z.strictObject({ a: z.boolean() }).optional() });

describe('ZodValidationPipe', () => {
  it.each([
    { name: 'unknown top-level field', input: { name: 'x', colour: 1 }, message: 'colour: unknown field' },
    { name: 'two unknown fields', input: { name: 'x', a: 1, b: 2 }, message: 'a: unknown field; b: unknown field' },
    { name: 'unknown nested field', input: { name: 'x', nested: { a: true, b: 1 } }, message: 'nested.b: unknown field' },
    { name: 'wrong type', input: { name: 'x', port: '5432' }, message: 'port: expected number, received string' },
    { name: 'missing required', input: {}, message: 'name: expected string (required)' },
    { name: 'null for string', input: { name: null }, message: 'name: expected string, received null' },
    { name: 'array for object', input: [], message: '(body): expected object, received array' },
    { name: 'non-integer', input: { name: 'x', port: 1.5 }, message: 'port: expected int, received number' },
  ])('$name', ({ input, message }) => {
    const pipe = new ZodValidationPipe(schema);
    try {
      pipe.transform(input);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).status).toBe(400);
      expect((err as ValidationError).code).toBe('validation_failed');
      expect((err as ValidationError).message).toBe(message);
    }
  });

  it('passes valid input through, parsed', () => {
    expect(new ZodValidationPipe(schema).transform({ name: 'x', port: 1 })).toEqual({ name: 'x', port: 1 });
  });

  it('treats a missing body as {}', () => {
    expect(new ZodValidationPipe(z.strictObject({ mode: z.string().optional() })).transform(undefined)).toEqual({});
  });

  it('labels a path parameter by name', () => {
    expect(() => new ZodValidationPipe(z.string().regex(/^a+$/), 'name').transform('b')).toThrow(/^name: /);
  });
});
