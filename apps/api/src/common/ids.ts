const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Prisma rejects a non-uuid for a uuid column with an internal error; check first and answer 404/400. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
