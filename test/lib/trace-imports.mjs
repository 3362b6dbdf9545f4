// Loaded with `node --import <this file>`: writes every module URL the program loads to stderr,
// one `import: <url>` line each (module.register's resolve hook), so a test can tell what a
// command pulls in at start.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('import: ' + r.url + '\\n');
  return r;
}`)}`,
);
