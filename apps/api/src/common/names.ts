import { z } from 'zod';

/** Names that end up in URLs, NATS keys and Postgres database names: conservative on purpose. */
export const resourceName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'expected 1-63 letters, digits, _ or -, starting with a letter or digit');
/** Group names also allow dots (IdP group names often have them). */
export const groupName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected 1-100 letters, digits, ., _ or -, starting with a letter or digit');
/** Identity subjects: IdP usernames, emails, `agent:<name>`. */
export const subjectName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:+\-/]{0,199}$/, 'expected 1-200 letters, digits or ._@:+-/, starting with a letter or digit');
