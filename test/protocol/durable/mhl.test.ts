/**
 * ASC MHL interoperability, in process: a history begun by the standard's reference
 * implementation (ascmitc/mhl's `ascmhl create -h md5`, run by hand on this machine over a folder
 * whose history our appendMhlGeneration began: its generation below, verbatim — md5 and xxh3 per
 * file, directory hashes, a root hash, dates with offsets; here it stands as the first generation) is read and verified by verifyMhlFolder, appended to by
 * appendMhlGeneration (the chain keeps the reference's entry and adds ours), and an altered
 * file or a generation holding only a format this tool cannot check is reported.
 */
import t, { type Test } from 'tap';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  appendMhlGeneration,
  appendMhlGenerationBytes,
  c4Id,
  readMhlHistory,
  verifyMhlFolder,
} from '@studio321/protocol/durable';
import { ProtocolError, validateMessage, type OfferMessage } from '@studio321/protocol';
import { sampleMessages } from '../../lib/sample-messages.js';

const REFERENCE_GENERATION = `<?xml version="1.0" encoding="UTF-8"?>
<hashlist version="2.0" xmlns="urn:ASC:MHL:v2.0">
  <creatorinfo>
    <creationdate>2026-12-05T09:46:35+00:00</creationdate>
    <hostname>vm</hostname>
    <tool version="1.0.0">ascmhl</tool>
  </creatorinfo>
  <processinfo>
    <process>in-place</process>
    <roothash>
      <content>
        <md5 hashdate="2026-12-05T09:46:35.141591+00:00">578f42ba0dc4541401a181eda0864f6d</md5>
      </content>
      <structure>
        <md5 hashdate="2026-12-05T09:46:35.141591+00:00">b4986cb1ab1e81872f06dfb921287bd9</md5>
      </structure>
    </roothash>
    <ignore>
      <pattern>.DS_Store</pattern>
      <pattern>ascmhl</pattern>
      <pattern>ascmhl/</pattern>
      <pattern>*.s321tmp</pattern>
    </ignore>
  </processinfo>
  <hashes>
    <hash>
      <path size="5" lastmodificationdate="2026-12-05T09:46:29+00:00">DCIM/a &amp; b.CR3</path>
      <md5 action="verified" hashdate="2026-12-05T09:46:35.141229+00:00">5d41402abc4b2a76b9719d911017c592</md5>
      <xxh3 action="verified" hashdate="2026-12-05T09:46:35.141193+00:00">9555e8555c62dcfd</xxh3>
    </hash>
    <directoryhash>
      <path lastmodificationdate="2026-12-05T09:46:29+00:00">DCIM</path>
      <content>
        <md5 hashdate="2026-12-05T09:46:35.141330+00:00">62109206880d38a4010a98e11243924a</md5>
      </content>
      <structure>
        <md5 hashdate="2026-12-05T09:46:35.141330+00:00">e1be77d67dcdb17b190dfce0675d0649</md5>
      </structure>
    </directoryhash>
    <hash>
      <path size="5" lastmodificationdate="2026-12-05T09:46:30+00:00">x.jpg</path>
      <md5 action="verified" hashdate="2026-12-05T09:46:35.141546+00:00">7d793037a0760186574b0282f2f435e7</md5>
      <xxh3 action="verified" hashdate="2026-12-05T09:46:35.141533+00:00">d6476c25083d69be</xxh3>
    </hash>
  </hashes>
</hashlist>
`;

async function referenceFolder(t: Test, generation = REFERENCE_GENERATION): Promise<string> {
  const root = join(t.testdir(), 'CARD_A');
  await mkdir(join(root, 'DCIM'), { recursive: true });
  await mkdir(join(root, 'ascmhl'));
  await writeFile(join(root, 'DCIM', 'a & b.CR3'), 'hello');
  await writeFile(join(root, 'x.jpg'), 'world');
  const name = '0001_CARD_A_2026-12-05_094635Z.mhl';
  await writeFile(join(root, 'ascmhl', name), generation);
  await writeFile(
    join(root, 'ascmhl', 'ascmhl_chain.xml'),
    `<?xml version="1.0" encoding="UTF-8"?>\n<ascmhldirectory xmlns="urn:ASC:MHL:DIRECTORY:v2.0">\n  <hashlist sequencenr="1">\n    <path>${name}</path>\n    <c4>${c4Id(Buffer.from(generation))}</c4>\n  </hashlist>\n</ascmhldirectory>\n`,
  );
  return root;
}

t.test("the C4 id is SMPTE's (the empty string's well-known id)", async (t) => {
  t.equal(
    c4Id(new Uint8Array()),
    'c459dsjfscH38cYeXXYogktxf4Cd9ibshE3BHUo6a58hBXmRQdZrAkZzsWcbWtDg5oQstpDuni4Hirj75GEmTc1sFT',
  );
});

t.test("a reference implementation's history is verified and appended to", async (t) => {
  const root = await referenceFolder(t);
  let r = await verifyMhlFolder(root);
  t.same(
    { ok: r.ok, generations: r.generations, checked: r.checked, chain: r.chain },
    { ok: true, generations: 1, checked: 2, chain: [] },
  );
  const g = await appendMhlGeneration({
    root,
    process: 'in-place',
    tool: { name: 'studiod', version: '0.1.0' },
    hostname: 'studio',
    files: [
      {
        path: 'x.jpg',
        size: 5,
        mtimeMs: Date.now(),
        xxh3: 'd6476c25083d69be',
        action: 'verified',
        hashDate: new Date().toISOString(),
      },
    ],
  });
  t.equal(g.generation, 2, 'the next sequence number');
  const chain = await readFile(join(root, 'ascmhl', 'ascmhl_chain.xml'), 'utf8');
  t.match(chain, /sequencenr="1">\s*<path>0001_CARD_A_2026-12-05_094635Z\.mhl</, "the reference's entry is kept");
  t.match(
    chain,
    new RegExp(
      `sequencenr="2">\\s*<path>0002_CARD_A_\\d{4}-\\d\\d-\\d\\d_\\d{6}Z\\.mhl</path>\\s*<c4>${c4Id(await readFile(g.path))}</c4>`,
    ),
  );
  await writeFile(join(root, 'DCIM', 'a & b.CR3'), 'hellO');
  r = await verifyMhlFolder(root);
  t.notOk(r.ok);
  t.same(
    r.altered.map((a) => [a.path, a.format]),
    [['DCIM/a & b.CR3', 'xxh3']],
    'the altered file, by its xxh3',
  );
});

t.test(
  'a generation a kill left out of the chain joins it at the next append; copied bytes keep their C4',
  async (t) => {
    const root = await referenceFolder(t);
    // A kill between the two writes of an append: the generation is there, the chain does not list it.
    const orphan = REFERENCE_GENERATION.replace('<hostname>vm<', '<hostname>vm2<');
    await writeFile(join(root, 'ascmhl', '0002_CARD_A_2026-12-05_100000Z.mhl'), orphan);
    let r = await verifyMhlFolder(root);
    t.match(r.chain, [/0002_CARD_A_2026-12-05_100000Z\.mhl is not in ascmhl_chain\.xml/], 'seen by verify');
    // Another process's generation appended as it is (studiod adopting an agent's, a refill copying one).
    const g = await appendMhlGenerationBytes(root, Buffer.from(REFERENCE_GENERATION), new Date('2026-12-05T10:01:02Z'));
    t.equal(g.path, join(root, 'ascmhl', '0003_CARD_A_2026-12-05_100102Z.mhl'), 'numbered after the orphan');
    const history = await readMhlHistory(root);
    t.same(
      history.map((h) => [h.sequence, h.name, h.c4]),
      [
        [1, '0001_CARD_A_2026-12-05_094635Z.mhl', c4Id(Buffer.from(REFERENCE_GENERATION))],
        [2, '0002_CARD_A_2026-12-05_100000Z.mhl', c4Id(Buffer.from(orphan))],
        [3, '0003_CARD_A_2026-12-05_100102Z.mhl', c4Id(Buffer.from(REFERENCE_GENERATION))],
      ],
      'the orphan joined the chain, the copy kept its bytes',
    );
    r = await verifyMhlFolder(root);
    t.same({ ok: r.ok, generations: r.generations, chain: r.chain }, { ok: true, generations: 3, chain: [] });
  },
);

t.test('a file recorded only in a format this tool cannot check is reported, not passed', async (t) => {
  const only128 = REFERENCE_GENERATION.replace(/<md5 action[^\n]*\n/g, '').replace(
    /<xxh3 action="verified" ([^>]*)>d6476c25083d69be<\/xxh3>/,
    '<xxh128 action="verified" $1>0123456789abcdef0123456789abcdef</xxh128>',
  );
  const r = await verifyMhlFolder(await referenceFolder(t, only128));
  t.notOk(r.ok);
  t.match(r.chain, [/x\.jpg: no hash format this tool can check \(xxh128\)/]);
});

t.test("an Offer's file may carry its XXH3-64; older agents' offers (none) stay valid", async (t) => {
  const offer = sampleMessages().offer;
  const file = offer.files[0] as OfferMessage['files'][number];
  t.notOk('xxh3' in (validateMessage(offer) as OfferMessage).files[0]!, 'without it: valid, none added');
  const withIt = { ...offer, files: [{ ...file, xxh3: 'd6476c25083d69be' }] };
  t.equal((validateMessage(withIt) as OfferMessage).files[0]?.xxh3, 'd6476c25083d69be', 'kept');
  for (const bad of ['D6476C25083D69BE', 'd6476c25083d69b', 42]) {
    t.throws(
      () => validateMessage({ ...offer, files: [{ ...file, xxh3: bad }] }),
      ProtocolError,
      `refused: ${String(bad)}`,
    );
  }
});
