/**
 * The e-mail channel: one message per notice through the configured SMTP server, with nodemailer
 * (a maintained client: STARTTLS when the server offers it, AUTH when a user is configured).
 * Connection errors and 4xx replies are retried; a 5xx reply (a refused sender or recipient) is not.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { AlertsConfig } from '../config.js';
import { STUDIO_CODES, StudioError } from '../errors.js';
import { noticeTitle, type AlertNotice } from './alert.js';
import type { AlertChannel } from './channels.js';

type EmailConfig = NonNullable<AlertsConfig['email']>;

export function noticeText(n: AlertNotice): string {
  const a = n.alert;
  const lines = [
    n.event === 'alert' ? a.summary : `Resolved: ${a.summary}`,
    '',
    `alert:    ${a.id} (${a.kind}, ${a.severity})`,
    `opened:   ${new Date(a.openedAt).toISOString()}`,
    ...(n.event === 'resolved' ? [`resolved: ${new Date(n.at).toISOString()}`] : []),
    `studio:   ${n.studio.software} ${n.studio.fingerprint}`,
    '',
    ...Object.entries(a.detail).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`),
    '',
    'Open alerts: studioctl alerts',
  ];
  return `${lines.join('\n')}\n`;
}

export class EmailChannel implements AlertChannel {
  readonly name = 'email';
  readonly #cfg: EmailConfig;
  readonly #transport: Transporter;

  constructor(cfg: EmailConfig) {
    this.#cfg = cfg;
    this.#transport = nodemailer.createTransport({
      host: cfg.host,
      port: cfg.port,
      secure: cfg.secure,
      ...(cfg.user === undefined ? {} : { auth: { user: cfg.user, pass: cfg.password ?? '' } }),
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
    });
  }

  async send(notice: AlertNotice): Promise<void> {
    try {
      await this.#transport.sendMail({
        from: this.#cfg.from,
        to: this.#cfg.to,
        subject: noticeTitle(notice),
        text: noticeText(notice),
        headers: { 'X-S321-Alert': notice.alert.id, 'X-S321-Event': notice.event },
      });
    } catch (err) {
      const code = (err as { responseCode?: unknown }).responseCode;
      const retryable = typeof code !== 'number' || code < 500;
      throw new StudioError(
        STUDIO_CODES.alertDelivery,
        `The SMTP server ${this.#cfg.host}:${this.#cfg.port} did not take the alert e-mail: ${(err as Error).message}`,
        { cause: err, retryable, ...(typeof code === 'number' ? { detail: { smtpCode: code } } : {}) },
      );
    }
  }

  async close(): Promise<void> {
    this.#transport.close();
  }
}
