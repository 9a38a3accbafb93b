// Principals: IAM users, roles and customer managed policies of the caller's account, a page
// at a time (MaxItems/Marker, as IAM pages), read through IAM's own actions.
import { iam } from './api.js';
import { el, table, errorBox, heading, show } from './ui.js';

const KINDS = {
  users: { label: 'Users', action: 'ListUsers', list: 'Users', columns: ['User name', 'ARN', 'User ID', 'Created'],
    row: (m, f) => [f('UserName'), el('td', { class: 'mono' }, f('Arn')), el('td', { class: 'mono' }, f('UserId')), f('CreateDate')] },
  roles: { label: 'Roles', action: 'ListRoles', list: 'Roles', columns: ['Role name', 'ARN', 'Role ID', 'Created'],
    row: (m, f) => [f('RoleName'), el('td', { class: 'mono' }, f('Arn')), el('td', { class: 'mono' }, f('RoleId')), f('CreateDate')] },
  policies: { label: 'Policies', action: 'ListPolicies', list: 'Policies', params: { Scope: 'Local' }, columns: ['Policy name', 'ARN', 'Attachments', 'Default version', 'Updated'],
    row: (m, f) => [f('PolicyName'), el('td', { class: 'mono' }, f('Arn')), f('AttachmentCount'), f('DefaultVersionId'), f('UpdateDate')] },
};

function child(node, name) {
  for (const c of node.children) if (c.localName === name) return c;
  return null;
}

export async function principalsPage(page, session) {
  let kind = 'users';
  const markers = [undefined];
  let position = 0;
  const results = el('div', {});
  const tabs = el('div', { class: 'tabs', role: 'group', 'aria-label': 'Principal kinds' });

  const load = async () => {
    for (const b of tabs.children) b.setAttribute('aria-pressed', String(b.dataset.kind === kind));
    const k = KINDS[kind];
    results.replaceChildren(el('p', {}, 'Loading…'));
    try {
      const params = { MaxItems: 25, ...(k.params || {}) };
      if (markers[position]) params.Marker = markers[position];
      const doc = await iam(k.action, params);
      const result = doc.getElementsByTagName(`${k.action}Result`)[0];
      const list = result ? child(result, k.list) : null;
      const members = list ? [...list.children].filter((c) => c.localName === 'member') : [];
      const truncated = result && child(result, 'IsTruncated') && child(result, 'IsTruncated').textContent === 'true';
      const marker = result && child(result, 'Marker') ? child(result, 'Marker').textContent : undefined;
      const rows = members.map((mem) => k.row(mem, (name) => (child(mem, name) ? child(mem, name).textContent : '')));
      results.replaceChildren(
        table(`${k.label} in account ${session.account}`, k.columns, rows),
        el('div', { class: 'pager' },
          el('button', { type: 'button', disabled: position === 0, onclick: () => { position -= 1; load(); } }, 'Previous page'),
          el('span', {}, `Page ${position + 1}`),
          el('button', { type: 'button', disabled: !truncated, onclick: () => { markers[position + 1] = marker; position += 1; load(); } }, 'Next page')));
    } catch (err) {
      if (err.status === 401) throw err;
      results.replaceChildren(errorBox(err));
    }
  };

  for (const [name, k] of Object.entries(KINDS)) {
    tabs.append(el('button', { type: 'button', 'data-kind': name, onclick: () => { kind = name; markers.length = 1; position = 0; load(); } }, k.label));
  }
  show(page, heading('Principals'), el('p', { class: 'hint' }, 'Read-only; change principals with the IAM API (aws iam …).'), tabs, results);
  await load();
  return null;
}
