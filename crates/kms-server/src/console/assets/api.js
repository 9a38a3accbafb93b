// The console's calls to its server: the session endpoints and /console/api/call, which runs
// one KMS, IAM or CloudTrail action as the signed-in principal.

let csrfToken = null;

/** An error answered by the server (or the API it called), with the AWS exception name. */
export class ApiError extends Error {
  constructor(type, message, status) {
    super(message || type);
    this.type = type;
    this.status = status;
  }
}

async function answer(resp) {
  const text = await resp.text();
  const type = resp.headers.get('content-type') || '';
  if (type.includes('xml')) {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    if (!resp.ok) {
      const code = doc.querySelector('Error > Code');
      const message = doc.querySelector('Error > Message');
      throw new ApiError(code ? code.textContent : 'Error', message ? message.textContent : text, resp.status);
    }
    return doc;
  }
  let body = {};
  if (text) {
    try { body = JSON.parse(text); } catch { body = { __type: 'Error', message: text }; }
  }
  if (!resp.ok) {
    const kind = String(body.__type || 'Error').split('#').pop();
    throw new ApiError(kind, body.message || body.Message || kind, resp.status);
  }
  return body;
}

function post(path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (csrfToken) headers['X-Ferrokms-Csrf'] = csrfToken;
  return fetch(path, { method: 'POST', headers, body: JSON.stringify(body || {}), credentials: 'same-origin' }).then(answer);
}

/** The current session's facts, or null when not signed in. */
export async function currentSession() {
  const resp = await fetch('/console/api/session', { credentials: 'same-origin' });
  if (resp.status === 401) return null;
  const info = await answer(resp);
  csrfToken = info.csrfToken;
  return info;
}

export async function signIn(accessKeyId, secretAccessKey, sessionToken) {
  const body = { AccessKeyId: accessKeyId, SecretAccessKey: secretAccessKey };
  if (sessionToken) body.SessionToken = sessionToken;
  const info = await post('/console/api/sign-in', body);
  csrfToken = info.csrfToken;
  return info;
}

export async function signOut() {
  try { await post('/console/api/sign-out'); } finally { csrfToken = null; }
}

/** One API action as the signed-in principal: JSON for KMS and CloudTrail, an XML document for IAM. */
export function call(service, action, parameters) {
  return post('/console/api/call', { Service: service, Action: action, Parameters: parameters || {} });
}

export const kms = (action, parameters) => call('kms', action, parameters);
export const iam = (action, parameters) => call('iam', action, parameters);
export const cloudtrail = (action, parameters) => call('cloudtrail', action, parameters);

export async function metrics() {
  const resp = await fetch('/console/api/metrics', { credentials: 'same-origin' });
  return answer(resp);
}

/** What PutKeyPolicy would say of `policy` on `keyId`, without saving it. */
export function checkPolicy(keyId, policy) {
  return post('/console/api/check-policy', { KeyId: keyId, Policy: policy });
}

export function verifyAudit() {
  return post('/console/api/verify-audit');
}
