import { Prisma } from '@portcullis/db';

/** A unique-constraint violation (Prisma P2002): the row being created already exists, or a concurrent create won. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}
