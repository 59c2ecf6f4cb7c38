import type { Client } from './connect.js';

/** Runs one short command on a connection and collects its output (for setup and probes, not renderers). */
export function execOnce(
  client: Client,
  command: string,
  input = '',
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      let output = '';
      let status: number | null = null;
      channel.on('data', (c: Buffer) => (output += c.toString()));
      channel.stderr.on('data', (c: Buffer) => (output += c.toString()));
      channel.on('exit', (s: number | null) => (status = s));
      channel.on('close', () => resolve({ code: status, output }));
      // Its standard input: what the command reads, then end of input.
      channel.end(input);
    });
  });
}
