import { applyDecorators } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiCreatedResponse } from '@nestjs/swagger';
import { z } from 'zod';

type SchemaObject = Record<string, unknown>;

/** JSON Schema of a zod schema for Swagger (draft-2020-12 keywords Swagger UI does not need are dropped). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): SchemaObject {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as SchemaObject;
  return rest;
}

/** Documents a zod-validated body in /docs. */
export function ApiZodBody(schema: z.ZodType, description?: string): MethodDecorator & ClassDecorator {
  return applyDecorators(ApiBody({ schema: jsonSchemaOf(schema) as never, description }));
}

export function ApiZodResponse(schema: z.ZodType, status: 200 | 201 = 200, description?: string): MethodDecorator & ClassDecorator {
  const opts = { schema: jsonSchemaOf(schema, 'output') as never, description };
  return applyDecorators(status === 201 ? ApiCreatedResponse(opts) : ApiOkResponse(opts));
}
