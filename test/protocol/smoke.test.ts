import t from 'tap';
import { CodedError } from '@studio321/protocol';
t.test('coded error', async (t) => {
  const e = new CodedError('X_Y', 'm', { cause: new Error('c') });
  t.equal(e.code, 'X_Y');
  t.ok(e.cause);
});
