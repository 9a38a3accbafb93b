// Keys: a page of ListKeys at a time (Limit/Marker, as the API pages), each key described;
// filters apply to the page shown. Create, enable/disable, schedule and cancel deletion.
import { kms } from './api.js';
import { el, field, select, table, errorBox, announce, date, heading, show } from './ui.js';

const STATES = ['', 'Enabled', 'Disabled', 'PendingDeletion', 'PendingImport', 'PendingReplicaDeletion', 'Unavailable', 'Updating', 'Creating'];

/** Key usages each key spec allows (the server checks again). */
export function usagesFor(spec) {
  if (spec === 'SYMMETRIC_DEFAULT') return ['ENCRYPT_DECRYPT'];
  if (spec.startsWith('RSA_')) return ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'];
  if (spec.startsWith('HMAC_')) return ['GENERATE_VERIFY_MAC'];
  if (spec === 'SM2') return ['SIGN_VERIFY', 'ENCRYPT_DECRYPT', 'KEY_AGREEMENT'];
  if (/^ECC_NIST_P(256|384|521)$/.test(spec)) return ['SIGN_VERIFY', 'KEY_AGREEMENT'];
  return ['SIGN_VERIFY'];
}

const filters = { state: '', spec: '', usage: '', alias: '', tag: '', limit: '25' };

async function describe(keyId, needTags) {
  const [described, aliases, tags] = await Promise.all([
    // A key the caller may list but not describe is shown with the reason, not hidden.
    kms('DescribeKey', { KeyId: keyId }).catch((err) => {
      if (err.status === 401 || keyId.startsWith('alias/')) throw err;
      return { KeyMetadata: { KeyId: keyId, KeyState: '', Description: `${err.type}: ${err.message}` }, refused: true };
    }),
    kms('ListAliases', { KeyId: keyId, Limit: 100 }).catch(() => ({ Aliases: [] })),
    needTags ? kms('ListResourceTags', { KeyId: keyId, Limit: 50 }).catch(() => ({ Tags: [] })) : { Tags: [] },
  ]);
  return { meta: described.KeyMetadata, refused: Boolean(described.refused), aliases: (aliases.Aliases || []).map((a) => a.AliasName), tags: tags.Tags || [] };
}

function matches(k) {
  const m = k.meta;
  if (filters.state && m.KeyState !== filters.state) return false;
  if (filters.spec && m.KeySpec !== filters.spec) return false;
  if (filters.usage && m.KeyUsage !== filters.usage) return false;
  if (filters.tag) {
    const [tk, tv] = filters.tag.split('=');
    if (!k.tags.some((t) => t.TagKey === tk.trim() && (tv === undefined || t.TagValue === tv.trim()))) return false;
  }
  return true;
}

export async function keysPage(page, session) {
  const markers = [undefined];
  let position = 0;
  const results = el('div', {});

  async function load() {
    results.replaceChildren(el('p', {}, 'Loading…'));
    try {
      let keys;
      let next;
      if (filters.alias) {
        const name = filters.alias.startsWith('alias/') ? filters.alias : `alias/${filters.alias}`;
        keys = [await describe(name, Boolean(filters.tag))];
      } else {
        const params = { Limit: Number(filters.limit) };
        if (markers[position]) params.Marker = markers[position];
        const listed = await kms('ListKeys', params);
        next = listed.Truncated ? listed.NextMarker : undefined;
        keys = await Promise.all((listed.Keys || []).map((k) => describe(k.KeyId, Boolean(filters.tag))));
      }
      const shown = keys.filter(matches);
      const rows = shown.map((k) => keyRow(k, load));
      const pager = el('div', { class: 'pager' },
        el('button', { type: 'button', disabled: position === 0, onclick: () => { position -= 1; load(); } }, 'Previous page'),
        el('span', {}, `Page ${position + 1} · ${shown.length} of ${keys.length} keys on this page match`),
        el('button', { type: 'button', disabled: !next, onclick: () => { markers[position + 1] = next; position += 1; load(); } }, 'Next page'));
      results.replaceChildren(
        table('KMS keys', ['Key ID', 'Aliases', 'State', 'Key spec', 'Usage', 'Description', 'Created', 'Actions'], rows),
        pager);
    } catch (err) {
      if (err.status === 401) throw err;
      results.replaceChildren(errorBox(err));
    }
  }

  show(page, heading('Keys'), filterForm(session, () => { markers.length = 1; position = 0; load(); }), createForm(session, load), results);
  await load();
  return null;
}

function filterForm(session, apply) {
  const state = select('state', STATES, filters.state);
  const spec = select('spec', ['', ...session.keySpecs], filters.spec);
  const usage = select('usage', ['', ...session.keyUsages], filters.usage);
  const alias = el('input', { name: 'alias', value: filters.alias, placeholder: 'alias/name', spellcheck: 'false' });
  const tag = el('input', { name: 'tag', value: filters.tag, placeholder: 'key=value' });
  const limit = select('limit', ['10', '25', '50', '100'], filters.limit);
  return el('form', { class: 'filters', 'aria-label': 'Filter keys', onsubmit: (e) => {
    e.preventDefault();
    Object.assign(filters, { state: state.value, spec: spec.value, usage: usage.value, alias: alias.value.trim(), tag: tag.value.trim(), limit: limit.value });
    apply();
  } },
  field('State', state), field('Key spec', spec), field('Key usage', usage), field('Alias', alias), field('Tag', tag),
  field('Keys per page', limit), el('button', { type: 'submit' }, 'Apply filters'));
}

function createForm(session, reload) {
  const description = el('input', { name: 'description', size: 30 });
  const spec = select('key-spec', session.keySpecs, 'SYMMETRIC_DEFAULT');
  const usage = select('key-usage', usagesFor('SYMMETRIC_DEFAULT'));
  spec.addEventListener('change', () => usage.replaceChildren(...usagesFor(spec.value).map((u) => el('option', { value: u }, u))));
  const alias = el('input', { name: 'alias', placeholder: 'alias/name (optional)', spellcheck: 'false' });
  const tag = el('input', { name: 'tag', placeholder: 'key=value (optional)' });
  const message = el('p', { role: 'status' });
  const form = el('form', { class: 'inline-form', 'aria-label': 'Create a key', onsubmit: async (e) => {
    e.preventDefault();
    message.className = '';
    message.textContent = 'Creating…';
    try {
      const params = { KeySpec: spec.value, KeyUsage: usage.value };
      if (description.value) params.Description = description.value;
      if (tag.value) {
        const [k, v] = tag.value.split('=');
        params.Tags = [{ TagKey: k.trim(), TagValue: (v || '').trim() }];
      }
      const created = await kms('CreateKey', params);
      const keyId = created.KeyMetadata.KeyId;
      if (alias.value.trim()) {
        const name = alias.value.trim().startsWith('alias/') ? alias.value.trim() : `alias/${alias.value.trim()}`;
        await kms('CreateAlias', { AliasName: name, TargetKeyId: keyId });
      }
      message.className = 'success';
      message.textContent = `Created key ${keyId}.`;
      announce(`Created key ${keyId}`);
      description.value = ''; alias.value = ''; tag.value = '';
      await reload();
    } catch (err) {
      message.className = 'error';
      message.textContent = `${err.type || 'Error'}: ${err.message}`;
    }
  } },
  field('Description', description), field('Key spec', spec), field('Key usage', usage), field('Alias', alias), field('Tag', tag),
  el('button', { type: 'submit', class: 'primary' }, 'Create key'), message);
  return el('details', {}, el('summary', {}, 'Create a key'), form);
}

/** The actions a key's state allows, each one API call. */
export function keyActions(m, done) {
  const act = (label, action, params, cls) => el('button', { type: 'button', class: cls, onclick: async (e) => {
    e.target.disabled = true;
    try {
      await kms(action, { KeyId: m.KeyId, ...params });
      announce(`${label}: ${m.KeyId}`);
      await done();
    } catch (err) {
      e.target.disabled = false;
      if (err.status === 401) throw err;
      announce(`${err.type}: ${err.message}`);
      e.target.after(el('span', { class: 'error', role: 'alert' }, ` ${err.type}: ${err.message}`));
    }
  } }, label);
  const out = [];
  if (m.KeyState === 'Enabled') out.push(act('Disable', 'DisableKey', {}));
  if (m.KeyState === 'Disabled') out.push(act('Enable', 'EnableKey', {}));
  if (m.KeyState === 'PendingDeletion') out.push(act('Cancel deletion', 'CancelKeyDeletion', {}));
  else if (m.KeyState === 'Enabled' || m.KeyState === 'Disabled' || m.KeyState === 'PendingImport') {
    out.push(el('button', { type: 'button', class: 'danger', onclick: (e) => {
      const days = el('input', { type: 'number', min: 7, max: 30, value: 30, size: 3, name: 'pending-window' });
      const form = el('form', { class: 'inline-form', 'aria-label': `Schedule deletion of ${m.KeyId}`, onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const r = await kms('ScheduleKeyDeletion', { KeyId: m.KeyId, PendingWindowInDays: Number(days.value) });
          announce(`Deletion of ${m.KeyId} scheduled for ${date(r.DeletionDate)}`);
          await done();
        } catch (err) {
          if (err.status === 401) throw err;
          form.append(el('p', { class: 'error', role: 'alert' }, `${err.type}: ${err.message}`));
        }
      } }, field('Waiting period (days, 7–30)', days),
      el('button', { type: 'submit', class: 'danger' }, 'Confirm deletion'),
      el('button', { type: 'button', onclick: () => { form.remove(); e.target.hidden = false; e.target.focus(); } }, 'Cancel'));
      e.target.hidden = true;
      e.target.after(form);
      days.focus();
    } }, 'Schedule deletion'));
  }
  return el('div', { class: 'actions' }, out);
}

function keyRow(k, reload) {
  const m = k.meta;
  if (k.refused) {
    return [el('td', { class: 'mono' }, m.KeyId), '', '', '', '', el('td', { class: 'error', colspan: 3 }, m.Description)];
  }
  return [
    el('td', { class: 'mono' }, el('a', { href: `#/keys/${m.KeyId}` }, m.KeyId)),
    el('td', { class: 'mono' }, k.aliases.join(', ')),
    el('td', {}, el('span', { class: `badge ${m.KeyState}` }, m.KeyState), m.DeletionDate ? ` until ${date(m.DeletionDate)}` : ''),
    m.KeySpec, m.KeyUsage, m.Description || '', date(m.CreationDate),
    el('td', {}, keyActions(m, reload)),
  ];
}
