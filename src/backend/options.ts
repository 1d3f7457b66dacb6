import type { z } from 'zod';
import { TwillError } from '../errors.js';
import { canonicalKeys } from '../lib/canonical-keys.js';

/**
 * A backend's `Backend.*` options through its zod schema: field names matched case-insensitively
 * (as flannel reads them), defaults filled in, and the first problem named as `Backend.<Field>`.
 */
export function parseBackendOptions<S extends z.ZodObject>(schema: S, raw: Readonly<Record<string, unknown>>): Readonly<z.infer<S>> {
  const given = canonicalKeys(raw, Object.keys(schema.shape));
  const parsed = schema.safeParse(given);
  if (parsed.success) return Object.freeze(parsed.data);
  const issue = parsed.error.issues[0]!;
  const field = `Backend.${issue.path.join('.')}`;
  const value = issue.path.length > 0 ? given[String(issue.path[0])] : raw;
  throw new TwillError('TWILL_ERR_CONFIG_INVALID', `network config: ${field} ${JSON.stringify(value)} ${issue.message}`, { details: { field } });
}

/** A flag value that must be one of `choices` (commander checks the flag; TWILL_* variables come here unchecked). */
export function oneOf<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  const found = choices.find((c) => c === value);
  if (found !== undefined) return found;
  throw new TwillError('TWILL_ERR_OPTION_INVALID', `--${flag}: "${value}" is not one of ${choices.join(', ')}`);
}
