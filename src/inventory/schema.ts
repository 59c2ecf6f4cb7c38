import { z } from 'zod';

const hostKeyPolicy = z.enum(['strict', 'accept-new', 'off']);
const port = z.number().int().min(1).max(65535);
const stringList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const jumpSchema = z.union([
  z.string().min(1),
  z.strictObject({
    host: z.string().min(1),
    user: z.string().min(1).optional(),
    port: port.optional(),
    identityFile: stringList.optional(),
    identitiesOnly: z.boolean().optional(),
    knownHosts: z.string().min(1).optional(),
    hostKeyPolicy: hostKeyPolicy.optional(),
  }),
]);

const envSchema = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name: letters, digits and _'),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

/** Fields a host and `defaults` share. */
const common = {
  user: z.string().min(1).optional(),
  port: port.optional(),
  slots: z.number().int().min(1).max(1024).optional(),
  workdir: z.string().min(1).optional(),
  identityFile: stringList.optional(),
  /** Use only the identity files, not every key of the agent (as OpenSSH's IdentitiesOnly). */
  identitiesOnly: z.boolean().optional(),
  knownHosts: z.string().min(1).optional(),
  hostKeyPolicy: hostKeyPolicy.optional(),
  jump: jumpSchema.optional(),
  env: envSchema.optional(),
  /** How long a login may take before the host is given up ("30s"; a number is seconds). */
  loginTimeout: z.union([z.string().min(1), z.number().positive()]).optional(),
  /** Offer DISTRAY_PASSWORD to this host, once its keys have failed. */
  password: z.boolean().optional(),
};

export const hostSchema = z.union([
  z.string().min(1),
  z.strictObject({
    host: z.string().min(1).optional(),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.@:-]+$/, 'a name of letters, digits and . _ - @ : (it is used in file names)')
      .optional(),
    local: z.boolean().optional(),
    ...common,
  }),
]);

export const inventorySchema = z.strictObject({
  defaults: z.strictObject(common).optional(),
  sshConfig: z.string().min(1).optional(),
  hosts: z.array(hostSchema).min(1, 'list at least one host'),
});

export type RawInventory = z.infer<typeof inventorySchema>;
export type RawHost = z.infer<typeof hostSchema>;
export type RawJump = z.infer<typeof jumpSchema>;
export type HostKeyPolicy = z.infer<typeof hostKeyPolicy>;

/** The fields each level of the inventory knows, for "did you mean" hints and "belongs in" hints. */
export const TOP_FIELDS = ['defaults', 'sshConfig', 'hosts'] as const;
export const DEFAULTS_FIELDS = Object.keys(common);
export const HOST_FIELDS = ['host', 'name', 'local', ...Object.keys(common)];
export const JUMP_FIELDS = ['host', 'user', 'port', 'identityFile', 'identitiesOnly', 'knownHosts', 'hostKeyPolicy'];
