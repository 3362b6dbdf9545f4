// A real SMTP server process on loopback for the alert e-mail tests (npm `smtp-server`, the
// server half of nodemailer's project): it starts in ~100 ms with no config or spool, unlike
// postfix/exim. No STARTTLS, no AUTH. Prints {"port"} when listening, then one JSON line per message.
import { SMTPServer } from 'smtp-server';

const server = new SMTPServer({
  disabledCommands: ['STARTTLS', 'AUTH'],
  authOptional: true,
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      process.stdout.write(
        `${JSON.stringify({ from: session.envelope.mailFrom?.address, to: session.envelope.rcptTo.map((r) => r.address), raw })}\n`,
      );
      callback();
    });
  },
});
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(`${JSON.stringify({ port: server.server.address().port })}\n`),
);
