// README.txt in every bundle: for the auditor who receives it, with no other documentation at hand.
import { DEFECT_CODES } from './verify-core.js';

const MEANING: Record<(typeof DEFECT_CODES)[number], string> = {
  AUD_MANIFEST_SIGNATURE: 'manifest.json is not signed by the collector key: nothing in the bundle can be relied on',
  AUD_COLLECTOR_KEY: 'the collector key is not the one you gave: the bundle was made (or re-signed) by someone else',
  AUD_FILE_MISSING: 'a file the manifest lists is not in the bundle',
  AUD_FILE_EXTRA: 'a file is in the bundle that the manifest does not list (or is not a regular file)',
  AUD_FILE_HASH: "a file's SHA-256 or size is not what the manifest says: it was changed",
  AUD_CHECKPOINT_SIGNATURE: 'a log checkpoint is not signed by the collector key',
  AUD_CHECKPOINT: 'a checkpoint is of another log or size than the manifest says, or does not link to the earlier one you gave',
  AUD_LOG_FORK: 'two signed checkpoints of the same size have different roots: the collector showed two histories',
  AUD_ROOT_MISMATCH: "the log entries do not reproduce a checkpoint's root: an entry was removed, altered, reordered, or the range cut short",
  AUD_ENTRY_MALFORMED: 'a log entry is not canonical JSON',
  AUD_KEY: "a host key does not match its agent id or its rotation record, or the log's key events",
  AUD_ENVELOPE_MALFORMED: 'an evidence line is not a signed vcm statement',
  AUD_ENVELOPE_SIGNATURE: "an envelope's signature does not verify under the host key valid at its seq",
  AUD_ENVELOPE_MISSING: 'the log holds an envelope of the period that the bundle does not: evidence was removed',
  AUD_ENTRY_MISSING: 'the bundle holds an envelope that no log entry of the range names: it was added or altered',
  AUD_OUT_OF_PERIOD: 'an envelope was collected outside the period (or its file names another day)',
  AUD_CHAIN_BROKEN: "an agent's results do not chain: a result does not commit to the one before it, or two share a seq",
  AUD_POLICY: 'a policy version is not the one the log entered',
  AUD_OSCAL_LINK: 'an OSCAL evidence link does not name a bundle file with its SHA-256',
};

export function auditorReadme(b: { vendor: string; from: string; to: string; fingerprint: string; origin: string }): string {
  const codes = DEFECT_CODES.map((c) => `  ${c.padEnd(26)}${MEANING[c]}`).join('\n');
  return `vcm audit bundle: ${b.vendor}, ${b.from} to ${b.to}
${'='.repeat(72)}

This bundle is the evidence that vcm agents on ${b.vendor}'s hosts signed and a vcm collector
stored, for the period above, with the collector's transparency log over it. You can verify all
of it on a machine with no network.

1. Obtain the collector key's fingerprint OUT OF BAND
   Ask the customer's security team for it over a channel you trust (in person, a signed letter, a
   call you placed). They read it on the collector's machine with:
       vcm-collector key fingerprint
   This bundle says it is:
       ${b.fingerprint}
   Do not trust that line by itself: anyone who made a false bundle would put their own key there.

2. Verify
   With Node.js 18 or later (no packages needed):
       node verify/verify.mjs --collector-fingerprint <FINGERPRINT>
   Or with only POSIX sh, openssl, sha256sum and jq (it runs verify.mjs too when node is there):
       sh verify/verify.sh <FINGERPRINT>
   Or, where vcm is installed:
       vcm-collector verify <bundle.tar.gz> --collector-fingerprint <FINGERPRINT>
   Exit 0: verified. 1: defects, each named with its file, log index, agent and seq. 2: not a
   bundle, or unusable. Add --format json for a machine-readable verdict. vcm-collector verify
   --report FILE writes report.html again with your verification's verdict and defects in place
   of the one made at export (report.html as shipped shows the collector's own check).

3. What "verified" means
   - manifest.json is signed by the collector key (manifest.dsse.json, DSSE), and every other file
     has the size and SHA-256 it lists; none is missing or extra.
   - The log checkpoints (log/) are signed by the collector key, under the log origin
     ${b.origin}. The entries in log/entries.jsonl, starting from the compact range in
     log/compact-range.json, reproduce the root of every checkpoint in the bundle: no entry of
     the range was removed, altered or reordered. Keep log/checkpoint-end.txt: give it to the
     next bundle's export (--after-checkpoint) and to its verifier, and the two bundles link.
   - Every envelope in evidence/<agent id>/<day>.jsonl (one per line, byte for byte as the agent
     sent it) is signed by the host key valid at its sequence number. An agent id is the
     SHA-256 of the host's first public key; each later key (keys/<agent>.key-N.json) is
     introduced by a request signed with the key before it.
   - Each agent's results chain: each commits to the hash of the one before it. The first of the
     period commits to the agent's newest envelope collected before the period, which is in
     evidence/<agent id>/prior.jsonl (signed, and checked like the rest), so no result at the
     period's start can be gone unseen; an agent with none before the period starts at seq 1.
     Missing sequence numbers are named as gaps, with the spool-drop record that explains them
     when there is one.
   - Every envelope entry of the period has its envelope in the bundle, and every envelope has its
     entry.

4. What a period holds
   - The period is [from, to) in UTC. It holds every result COLLECTED in it, whenever it was
     delivered: a result collected on the last day and delivered a week later is in it, if the
     bundle was made after the delivery. A bundle made before the period ended holds what was
     delivered by then, and says so (manifest.json: period.ended is false). A result stored after
     the export's end checkpoint was issued is left to the next bundle, whose range enters it.
   - The log range starts at the newest checkpoint before the first entry of the period and ends
     at the checkpoint issued for this export. Entries outside the period are in the range too:
     they are needed to reproduce the roots. Their envelopes are not in the bundle.
   - Agents enrolled or revoked during the period are in it for the part they were enrolled.
     A host that sent nothing for longer than its policy's freshness window is listed as silent,
     with what explains it (enrollment, revocation, a spool-drop record) or "unexplained".
   - A period in which no host sent anything is still a valid bundle: the signed log shows that
     nothing arrived, and that silence is the evidence.

5. The files
   manifest.json, manifest.dsse.json   what the bundle holds, and the collector's signature on it
   collector/collector.pem, .vkey        the collector key (PEM, and as a C2SP verifier key)
   log/                                  checkpoints, the compact range, the entries
   evidence/                             the envelopes, by agent and day
   keys/                                 host keys and their events (enrolled, rotated, revoked)
   policy/                               the policy versions in force during the period
   report.html                           the report to read (charts, failures, waivers)
   summary.csv                           host, control and day: results, passes, fails, unknowns
   oscal/                                OSCAL 1.0.6: assessment results, plan and system plan
   model.json                            the data the report, CSV and OSCAL are made from
   verify/verify.mjs, verify/verify.sh   the verifiers

   The report and the CSV give the collector's verdicts: each result judged from the facts the
   host signed, under the policy in force when it was collected. The verifiers' table gives the
   statuses as the hosts signed them. The two can differ; the evidence behind both is here.

6. Defect codes
${codes}
`;
}
