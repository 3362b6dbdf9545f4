// A real s3rver process on loopback, for tests. Usage:
//   node s3rver-child.mjs <dataDir> <port|0> <bucket>...
// Prints one JSON line {"port":N} when listening; runs until killed.
import S3rver from 's3rver';

const [dir, port, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  directory: dir,
  address: '127.0.0.1',
  port: Number(port),
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
const addr = await server.run();
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
