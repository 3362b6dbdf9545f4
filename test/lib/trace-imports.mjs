// Loaded with `node --import <this file>`: writes every module URL the program loads to stderr,
// one `import: <url>` line each (module.register's resolve hook), and every CommonJS module it
// requires, one `require: <path>` line each (Module._load: `field-agent status` runs from one
// CommonJS file, agent/dist/bin/status.cjs), so a test can tell what a command pulls in at start.
import Module, { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('import: ' + r.url + '\\n');
  return r;
}`)}`,
);

const load = Module._load;
Module._load = function (request, parent, isMain) {
  process.stderr.write(`require: ${Module._resolveFilename(request, parent, isMain)}\n`);
  return load.call(this, request, parent, isMain);
};
