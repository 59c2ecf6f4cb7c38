// Run as `node --import tsx test/helpers/addKnownHost.ts FILE NAME KEY_BASE64`: one
// process adding a key under accept-new's lock, for the test that two
// processes at once add it exactly once. Says `ready` before it tries, and
// `added` or `known` after.
import { addKnownHost } from '../../src/ssh/hostKeys.js';

const [file, name, key] = process.argv.slice(2);
if (!file || !name || !key) throw new Error('usage: addKnownHost.ts FILE NAME KEY_BASE64');
process.stdout.write('ready\n');
const added = await addKnownHost(file, name, Buffer.from(key, 'base64'));
process.stdout.write(added ? 'added\n' : 'known\n');
