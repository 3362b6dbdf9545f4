/**
 * A real S3-compatible server (s3rver) on loopback, run as a child process by
 * the demo:  node s3rver-child.js <dataDir> <port|0> <bucket>...
 * Prints one JSON line {"port":N} when listening; stops on SIGTERM/SIGINT.
 */
import S3rver from 's3rver';

const [dir, port, ...buckets] = process.argv.slice(2);
if (dir === undefined || port === undefined) {
  process.stderr.write('usage: s3rver-child <dataDir> <port|0> <bucket>...\n');
  process.exit(2);
}
const server = new S3rver({
  directory: dir,
  address: '127.0.0.1',
  port: Number(port),
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
const addr = await server.run();
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
const stop = (): void => {
  void server.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
