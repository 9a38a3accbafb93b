// One key: metadata, aliases, tags, rotation, grants, last use, and its key policy in an
// editor that checks the JSON, shows the change as a diff, and reports the server's lockout
// safety check before anything is saved.
import { kms, checkPolicy } from './api.js';
import { el, table, errorBox, meta, date, heading, show, announce } from './ui.js';
import { keyActions } from './keys.js';
import { lineDiff, foldUnchanged } from './diff.js';

function section(title, body) {
  return el('section', { 'aria-label': title }, el('h2', {}, title), body);
}

async function part(title, load) {
  try {
    return section(title, await load());
  } catch (err) {
    if (err.status === 401) throw err;
    return section(title, errorBox(err));
  }
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

export async function keyPage(page, session, keyId) {
  const render = async () => {
    let m;
    try {
      m = (await kms('DescribeKey', { KeyId: keyId })).KeyMetadata;
    } catch (err) {
      if (err.status === 401) throw err;
      show(page, heading(`Key ${keyId}`), el('p', {}, el('a', { href: '#/keys' }, '← All keys')), errorBox(err));
      return;
    }
    const symmetric = m.KeySpec === 'SYMMETRIC_DEFAULT';
    const parts = await Promise.all([
      part('Aliases', async () => {
        const r = await kms('ListAliases', { KeyId: m.KeyId, Limit: 100 });
        return table('Aliases of this key', ['Alias', 'Created'], (r.Aliases || []).map((a) => [el('td', { class: 'mono' }, a.AliasName), date(a.CreationDate)]));
      }),
      part('Tags', async () => {
        const r = await kms('ListResourceTags', { KeyId: m.KeyId, Limit: 50 });
        return table('Tags of this key', ['Key', 'Value'], (r.Tags || []).map((t) => [t.TagKey, t.TagValue]));
      }),
      part('Rotation', async () => {
        const status = symmetric ? await kms('GetKeyRotationStatus', { KeyId: m.KeyId }) : null;
        const rotations = await kms('ListKeyRotations', { KeyId: m.KeyId, Limit: 20 }).catch((err) => {
          if (err.status === 401) throw err;
          return { Rotations: [], error: err };
        });
        return el('div', {},
          status ? meta([['Automatic rotation', status.KeyRotationEnabled ? 'enabled' : 'disabled'],
            ['Rotation period (days)', status.RotationPeriodInDays], ['Next rotation', date(status.NextRotationDate)]])
            : el('p', {}, 'Only symmetric encryption keys rotate automatically.'),
          rotations.error ? errorBox(rotations.error)
            : table('Rotations (newest 20)', ['Key material', 'Rotated', 'Type'], (rotations.Rotations || []).map((r) => [el('td', { class: 'mono' }, r.KeyMaterialId || ''), date(r.RotationDate), r.RotationType || ''])));
      }),
      part('Grants', async () => {
        const r = await kms('ListGrants', { KeyId: m.KeyId, Limit: 50 });
        return table('Grants (first 50)', ['Grant ID', 'Name', 'Grantee', 'Operations', 'Created'], (r.Grants || []).map((g) => [
          el('td', { class: 'mono' }, g.GrantId), g.Name || '', el('td', { class: 'mono' }, g.GranteePrincipal || ''), (g.Operations || []).join(', '), date(g.CreationDate)]));
      }),
      part('Last use', async () => {
        const r = await kms('GetKeyLastUsage', { KeyId: m.KeyId });
        const u = r.KeyLastUsage || {};
        return meta([['Last used', u.LastUsedDate ? date(u.LastUsedDate) : 'not used since tracking started'],
          ['Operation', u.Operation], ['Tracking since', date(r.TrackingStartDate)],
          ...Object.entries(u).filter(([k]) => k !== 'LastUsedDate' && k !== 'Operation').map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])]);
      }),
    ]);
    const policy = await part('Key policy', () => policyEditor(m, session));
    show(page,
      heading(`Key ${m.KeyId}`),
      el('p', {}, el('a', { href: '#/keys' }, '← All keys')),
      section('Metadata', el('div', {}, meta([
        ['ARN', m.Arn], ['State', m.KeyState], ['Description', m.Description], ['Key spec', m.KeySpec], ['Key usage', m.KeyUsage],
        ['Origin', m.Origin], ['Created', date(m.CreationDate)], ['Deletion date', date(m.DeletionDate)],
        ['Multi-Region', m.MultiRegion ? 'yes' : 'no'],
        ['Algorithms', (m.EncryptionAlgorithms || m.SigningAlgorithms || m.MacAlgorithms || m.KeyAgreementAlgorithms || []).join(', ')],
      ]), keyActions(m, render))),
      el('div', { class: 'grid2' }, parts),
      policy);
  };
  await render();
  return null;
}

async function policyEditor(m, session) {
  const current = pretty((await kms('GetKeyPolicy', { KeyId: m.KeyId, PolicyName: 'default' })).Policy);
  let saved = current;
  const editor = el('textarea', { id: 'policy-editor', class: 'policy', spellcheck: 'false', 'aria-describedby': 'policy-help' });
  editor.value = current;
  const help = el('p', { id: 'policy-help', class: 'hint' },
    'Edit the JSON, review the change, then save. The server refuses a policy that would lock you ',
    `(${session.principal}) out of the key's policy; the console never asks it to skip that check.`);
  const message = el('div', { id: 'policy-message', 'aria-live': 'polite' });
  const diffBox = el('div', { id: 'policy-diff' });
  const save = el('button', { type: 'button', class: 'primary', disabled: true }, 'Save policy');

  // Checks the JSON here, shows the diff, then asks the server what PutKeyPolicy would say:
  // the policy language, the principals it names, and its lockout safety check.
  let reviewed = null;
  const check = async () => {
    reviewed = null;
    message.replaceChildren();
    diffBox.replaceChildren();
    save.disabled = true;
    let parsed;
    try {
      parsed = JSON.parse(editor.value);
    } catch (err) {
      message.append(el('p', { class: 'error', role: 'alert' }, `Invalid JSON: ${err.message}`));
      return null;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      message.append(el('p', { class: 'error', role: 'alert' }, 'Invalid policy: a key policy is a JSON object.'));
      return null;
    }
    const next = JSON.stringify(parsed, null, 2);
    const diff = lineDiff(saved, next);
    const changed = diff.some((d) => d.op !== ' ');
    diffBox.append(el('h3', {}, changed ? 'Changes against the current policy' : 'No changes'),
      el('div', { class: 'diff', role: 'region', 'aria-label': 'Policy diff', tabindex: '0' },
        foldUnchanged(diff).map((d) => el('div', { class: d.op === '+' ? 'add' : d.op === '-' ? 'del' : d.op === '…' ? 'fold' : '' },
          el('span', { class: 'sr-only' }, d.op === '+' ? 'added: ' : d.op === '-' ? 'removed: ' : ''), `${d.op} ${d.line}`))));
    if (!changed) return next;
    try {
      const verdict = await checkPolicy(m.KeyId, next);
      if (!verdict.valid) {
        message.append(el('p', { class: 'error', role: 'alert' }, `PutKeyPolicy would refuse this policy. ${verdict.__type}: ${verdict.message}`));
      } else if (!verdict.lockoutSafe) {
        message.append(el('p', { class: 'warning', role: 'alert' },
          `Lockout warning: with this policy you (${session.principal}) could no longer change the key policy, `
          + 'so the lockout safety check refuses it. Keep a statement that allows you kms:PutKeyPolicy.'));
      } else {
        message.append(el('p', { class: 'success', role: 'status' }, 'The server\'s checks pass: you keep kms:PutKeyPolicy on this key.'));
      }
    } catch (err) {
      if (err.status === 401) throw err;
      message.append(el('p', { class: 'error', role: 'alert' }, `The policy could not be checked. ${err.type}: ${err.message}`));
    }
    save.disabled = false;
    reviewed = { raw: editor.value, next };
    return next;
  };

  save.addEventListener('click', async () => {
    // Saved as reviewed (checked again only if the text changed since).
    const next = reviewed && reviewed.raw === editor.value ? reviewed.next : await check();
    if (next === null || next === saved) return;
    save.disabled = true;
    try {
      await kms('PutKeyPolicy', { KeyId: m.KeyId, PolicyName: 'default', Policy: next });
      saved = next;
      editor.value = next;
      message.replaceChildren(el('p', { class: 'success', role: 'status' }, 'Policy saved.'));
      diffBox.replaceChildren();
      announce(`Key policy of ${m.KeyId} saved`);
    } catch (err) {
      if (err.status === 401) throw err;
      const lockout = /update the key policy in the future/i.test(err.message || '');
      message.replaceChildren(el('p', { class: lockout ? 'warning' : 'error', role: 'alert' },
        lockout ? `Not saved: the lockout safety check refused this policy. ${err.type}: ${err.message}` : `Not saved. ${err.type}: ${err.message}`));
      save.disabled = false;
    }
  });

  return el('div', {},
    el('label', { for: 'policy-editor' }, 'Key policy (JSON)'), help, editor,
    el('div', { class: 'actions' },
      el('button', { type: 'button', onclick: () => check() }, 'Review changes'),
      save,
      el('button', { type: 'button', onclick: () => { editor.value = saved; message.replaceChildren(); diffBox.replaceChildren(); save.disabled = true; } }, 'Revert')),
    message, diffBox);
}
