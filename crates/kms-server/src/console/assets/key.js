// One key: metadata, aliases, tags, rotation, grants, last use, and its key policy in an
// editor that checks the JSON, shows the change as a diff, and reports the server's lockout
// safety check before anything is saved.
import { kms } from './api.js';
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

  const check = () => {
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
    if (!mentions(parsed, session)) {
      message.append(el('p', { class: 'warning', role: 'alert' },
        'Warning: no Allow statement in this policy names you, your account or "*". If no IAM policy of yours is '
        + 'delegated by it, you may lose access to this key; the server refuses the policy if it would lock you out of PutKeyPolicy.'));
    }
    save.disabled = !changed;
    return next;
  };

  save.addEventListener('click', async () => {
    const next = check();
    if (next === null) return;
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
      el('button', { type: 'button', onclick: () => { editor.value = saved; check(); } }, 'Revert')),
    message, diffBox);
}

/** Whether some Allow statement names the signed-in principal, its account or everyone. */
function mentions(policy, session) {
  const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement].filter(Boolean);
  const names = [session.principal, `arn:aws:iam::${session.account}:root`, session.account, '*'];
  return statements.some((s) => {
    if (!s || s.Effect !== 'Allow') return false;
    const p = s.Principal;
    if (p === '*') return true;
    const aws = p && p.AWS;
    const list = Array.isArray(aws) ? aws : [aws];
    return list.some((a) => names.includes(a));
  });
}
