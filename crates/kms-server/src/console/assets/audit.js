// The audit trail through CloudTrail's LookupEvents (newest first, a page at a time with
// NextToken), with one lookup attribute sent to the server and any further filters applied to
// the page shown; record detail; and the hash chain's verification, on request.
import { kms, cloudtrail, verifyAudit } from './api.js';
import { el, field, table, errorBox, date, heading, show, errorText } from './ui.js';

const filters = { key: '', principal: '', event: '', error: '', from: '', to: '' };

function localToEpoch(value) {
  if (!value) return undefined;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : t / 1000;
}

export async function auditPage(page) {
  const tokens = [undefined];
  let position = 0;
  const results = el('div', {});
  const verifyStatus = el('p', { id: 'chain-status', role: 'status' }, 'Chain not verified in this view yet.');

  const load = async () => {
    results.replaceChildren(el('p', {}, 'Loading…'));
    try {
      let keyArn = filters.key;
      if (keyArn && !keyArn.startsWith('arn:')) keyArn = (await kms('DescribeKey', { KeyId: keyArn })).KeyMetadata.Arn;
      const attributes = [['EventName', filters.event], ['ResourceName', keyArn], ['Username', filters.principal]].filter(([, v]) => v);
      const params = { MaxResults: 50 };
      if (attributes.length) params.LookupAttributes = [{ AttributeKey: attributes[0][0], AttributeValue: attributes[0][1] }];
      const from = localToEpoch(filters.from);
      const to = localToEpoch(filters.to);
      if (from !== undefined) params.StartTime = from;
      if (to !== undefined) params.EndTime = to;
      if (tokens[position]) params.NextToken = tokens[position];
      const answer = await cloudtrail('LookupEvents', params);
      const events = (answer.Events || []).map((e) => {
        let record = {};
        try { record = JSON.parse(e.CloudTrailEvent); } catch { /* shown raw */ }
        return { e, record };
      }).filter(({ e, record }) => {
        if (filters.event && e.EventName !== filters.event) return false;
        if (keyArn && !(e.Resources || []).some((r) => r.ResourceName === keyArn)) return false;
        if (filters.principal && e.Username !== filters.principal) return false;
        if (filters.error === '-' && record.errorCode) return false;
        if (filters.error && filters.error !== '-' && record.errorCode !== filters.error) return false;
        return true;
      });
      const rows = events.map(({ e, record }) => {
        const detail = el('pre', { hidden: true, class: 'mono', tabindex: '0', 'aria-label': `Record of ${e.EventName}` }, JSON.stringify(record, null, 2) || e.CloudTrailEvent);
        const toggle = el('button', { type: 'button', 'aria-expanded': 'false', onclick: () => {
          detail.hidden = !detail.hidden;
          toggle.setAttribute('aria-expanded', String(!detail.hidden));
          toggle.textContent = detail.hidden ? 'Details' : 'Hide';
        } }, 'Details');
        return [date(e.EventTime), e.EventName, e.EventSource, e.Username || (record.userIdentity && record.userIdentity.arn) || '',
          record.userAgent || '', record.errorCode ? el('td', { class: 'error' }, record.errorCode) : '',
          el('td', { class: 'mono' }, (e.Resources || []).map((r) => r.ResourceName).join(' ')),
          el('td', {}, toggle, detail)];
      });
      const next = answer.NextToken;
      results.replaceChildren(
        table('Audit records, newest first', ['Time', 'Event', 'Source', 'Principal', 'User agent', 'Error', 'Resources', 'Record'], rows),
        el('div', { class: 'pager' },
          el('button', { type: 'button', disabled: position === 0, onclick: () => { position -= 1; load(); } }, 'Newer'),
          el('span', {}, `Page ${position + 1}`),
          el('button', { type: 'button', disabled: !next, onclick: () => { tokens[position + 1] = next; position += 1; load(); } }, 'Older')));
    } catch (err) {
      if (err.status === 401) throw err;
      results.replaceChildren(errorBox(err));
    }
  };

  const input = (name, value, attrs) => el('input', { name, value, spellcheck: 'false', ...(attrs || {}) });
  const key = input('key', filters.key, { placeholder: 'key id or ARN' });
  const principal = input('principal', filters.principal, { placeholder: 'user or role name' });
  const event = input('event', filters.event, { placeholder: 'CreateKey' });
  const error = input('error', filters.error, { placeholder: 'AccessDeniedException, or - for none' });
  const from = input('from', filters.from, { type: 'datetime-local' });
  const to = input('to', filters.to, { type: 'datetime-local' });
  const form = el('form', { class: 'filters', 'aria-label': 'Filter audit records', onsubmit: (e) => {
    e.preventDefault();
    Object.assign(filters, { key: key.value.trim(), principal: principal.value.trim(), event: event.value.trim(), error: error.value.trim(), from: from.value, to: to.value });
    tokens.length = 1; position = 0;
    load();
  } }, field('Key', key), field('Principal', principal), field('Event name', event), field('Error code', error),
  field('From', from), field('To', to), el('button', { type: 'submit' }, 'Apply filters'));

  const verify = el('button', { type: 'button', onclick: async () => {
    verify.disabled = true;
    verifyStatus.className = '';
    verifyStatus.textContent = 'Verifying the whole chain…';
    try {
      let r = await verifyAudit();
      // A long trail: the server keeps verifying; ask again (the same run answers).
      for (let waited = 1; r.state === 'running'; waited += 1) {
        verifyStatus.textContent = `Still verifying the whole chain… (${waited * 20} s)`;
        r = await verifyAudit();
      }
      verifyStatus.className = r.intact ? 'success' : 'error';
      verifyStatus.textContent = r.intact
        ? `Chain intact: ${r.records} records, ${r.digests} signed digests verified.`
        : `Chain BROKEN: ${r.problem}`;
    } catch (err) {
      if (err.status === 401) throw err;
      verifyStatus.className = 'error';
      verifyStatus.textContent = errorText(err);
    } finally {
      verify.disabled = false;
    }
  } }, 'Verify chain');

  show(page, heading('Audit trail'),
    el('p', { class: 'hint' }, 'LookupEvents takes one lookup attribute: the first of event name, key and principal goes to the server; the other filters and the error code apply to the page shown.'),
    form, el('div', { class: 'actions' }, verify), verifyStatus, results);
  await load();
  return null;
}
