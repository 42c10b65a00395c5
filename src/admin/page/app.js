// mediagate's admin page (CONTRACT.md section 6): integrations, their
// connection tests, and the cache, over the admin API on the same origin.
//
// No framework and no build step. Every text that comes from the server is
// set with textContent (never as HTML). The form is built from
// GET /api/types, the server's one definition of each integration type, so
// this file knows no integration keys of its own: each type's credential
// sources come with their own keys, and the form shows and sends the
// chosen source's only.

const TOKEN_KEY = 'mediagate-admin-token';
/** What the API shows instead of a stored secret; sent back, it keeps the secret. */
const MARKER = '********';
/** Keys of an integration object that are answers, not configuration. */
const ANSWER_KEYS = new Set(['status', 'last_test', 'problems', 'credential_source', 'credentials_expire']);

const $ = (id) => document.getElementById(id);

/** `el('p', {class: 'x'}, 'text', child)`: an element with attributes and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ------------------------------------------------------------------ token and API

let tokenWait = null; // { promise, resolve } while the sign-in dialog is open

/** Opens the sign-in dialog (once, however many callers wait) and resolves with the token. */
function askToken(message, problem = true) {
  $('login-message').textContent = message;
  $('login-message').classList.toggle('error', problem);
  if (!tokenWait) {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    tokenWait = { promise, resolve };
    const dialog = $('login');
    if (!dialog.open) dialog.showModal();
    $('token').value = '';
    $('token').focus();
  }
  return tokenWait.promise;
}

function setupLogin() {
  const dialog = $('login');
  // Escape would leave a page that can do nothing: keep the dialog open.
  dialog.addEventListener('cancel', (e) => e.preventDefault());
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      $('login-message').textContent = 'Enter the token first.';
      $('token').focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    dialog.close();
    $('sign-out').hidden = false;
    const wait = tokenWait;
    tokenWait = null;
    wait?.resolve(token);
  });
  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('sign-out').hidden = true;
    askToken('Token forgotten. Enter it again to go on.', false).then(() => loadAll());
  });
}

class Unreachable extends Error {}

/**
 * One admin API call with the bearer token; asks for the token (again) on
 * 401 and retries. Answers `{status, ok, json}`; throws `Unreachable` when
 * mediagate cannot be reached (and says so in the banner).
 */
async function api(method, path, body) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY) ?? (await askToken('Enter the admin token to manage this mediagate.', false));
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      banner(`Cannot reach mediagate's admin API (${e.message}). Is mediagate still running?`);
      throw new Unreachable(e.message);
    }
    banner(null);
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      $('sign-out').hidden = true;
      await askToken('That token was not accepted (401 unauthorized). Enter the value of [admin] token from mediagate\'s config.');
      continue;
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: shown as text */ }
    return { status: res.status, ok: res.ok, json, text };
  }
}

/** A sentence for an API answer that is an error. */
function errorText(answer) {
  const e = answer.json?.error;
  if (e?.message) return e.code ? `${e.message} (${answer.status} ${e.code})` : e.message;
  return `mediagate answered ${answer.status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ''}`;
}

function banner(text) {
  $('banner').hidden = !text;
  $('banner').textContent = text ?? '';
}

// ------------------------------------------------------------------ formatting

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

function relative(date) {
  const s = (date.getTime() - Date.now()) / 1000;
  const a = Math.abs(s);
  if (a < 45) return 'just now';
  if (a < 45 * 60) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 22 * 3600) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

function exact(date) {
  return date.toLocaleString('en-GB', {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  });
}

/** `<time>` showing "5 minutes ago (2 Dec 2026, 22:40:01 UTC)"; the relative part is kept fresh. */
function when(at) {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return el('span', { text: String(at) });
  return el('time', { datetime: at, title: at },
    el('span', { class: 'rel', 'data-at': at, text: relative(date) }), ` (${exact(date)})`);
}

function refreshRelativeTimes() {
  for (const span of document.querySelectorAll('.rel[data-at]')) {
    span.textContent = relative(new Date(span.dataset.at));
  }
}

function bytes(n) {
  if (typeof n !== 'number') return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u += 1; }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

const count = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '?');

const STATUS_SIGN = { ok: '✓', failing: '✕', incomplete: '!', untested: '?' };
const STATUS_TIP = {
  ok: 'The last connection test passed.',
  failing: 'The last connection test failed: see its message.',
  incomplete: 'Saved, but keys it needs are missing: see the problems.',
  untested: 'Not tested since mediagate started.',
};

function badge(status) {
  const s = String(status ?? 'untested');
  return el('span', { class: `badge badge-${s.replace(/[^a-z]/g, '')}`, title: STATUS_TIP[s] ?? '' },
    el('span', { 'aria-hidden': 'true', text: STATUS_SIGN[s] ?? '•' }), ` ${s}`);
}

/** A connection test: the code, the storage's sentence, and when. */
function testSummary(test) {
  const ok = test.ok === true;
  return el('div', { class: 'test' },
    el('div', {},
      el('code', { class: ok ? 'code code-ok' : 'code code-fail', text: test.code ?? (ok ? 'ok' : '?') }),
      test.message ? ` ${test.message}` : ''),
    el('div', { class: 'when' },
      test.at ? when(test.at) : '',
      typeof test.duration_ms === 'number' ? `, took ${count(test.duration_ms)} ms` : ''));
}

function problemList(problems) {
  return el('ul', { class: 'problems' },
    problems.map((p) => el('li', {}, p.key ? el('code', { text: p.key }) : '', p.key ? ': ' : '', p.message ?? '')));
}

/** The credential source in use and when its credentials expire (never the credentials). */
function credentialsOf(i) {
  if (!i.credential_source) return '';
  const until = i.credentials_expire ? `, expire ${exact(new Date(i.credentials_expire))}` : '';
  return el('div', { class: 'credentials', text: `${i.credential_source}${until}` });
}

/** What an integration serves: its buckets, its Azure storage URL, or everything by default. */
function scopeOf(i) {
  const parts = [];
  if (i.type === 'azure-blob') parts.push(i.storage_url ? String(i.storage_url) : 'no storage URL yet');
  for (const k of ['buckets', 'containers']) {
    if (!Array.isArray(i[k]) || !i[k].length) continue;
    if (parts.length) parts.push('; ');
    parts.push(`${k}: `);
    i[k].forEach((b, n) => parts.push(n ? ', ' : '', el('span', { class: 'bucket', text: b })));
  }
  if (!parts.length) parts.push('all buckets by default');
  return parts;
}

// ------------------------------------------------------------------ the list

let integrations = [];
let types = new Map(); // type name -> {type, title, keys}

async function loadTypes() {
  const answer = await api('GET', '/api/types');
  if (!answer.ok) throw new Error(`Cannot read the integration types: ${errorText(answer)}`);
  types = new Map((answer.json?.types ?? []).map((t) => [t.type, t]));
}

async function loadList() {
  const answer = await api('GET', '/api/integrations');
  if (!answer.ok) {
    $('list-status').textContent = `Cannot list the integrations: ${errorText(answer)}`;
    return;
  }
  integrations = answer.json?.integrations ?? [];
  renderList();
}

function renderList() {
  const focused = document.activeElement?.dataset?.open;
  const rows = $('rows');
  rows.replaceChildren();
  for (const i of integrations) {
    const last = i.last_test
      ? testSummary(i.last_test)
      : el('span', { class: 'muted', text: 'Not tested yet' });
    const problems = Array.isArray(i.problems) && i.problems.length ? problemList(i.problems) : '';
    const open = el('button', { type: 'button', class: 'link', 'data-open': i.name, text: i.name,
      'aria-label': `${i.name}: edit, test or delete` });
    const tr = el('tr', { 'aria-current': editing === i.name ? 'true' : null },
      el('th', { scope: 'row' }, open),
      el('td', { class: 'type' }, i.type, credentialsOf(i)),
      el('td', {}, badge(i.status)),
      el('td', { class: 'scope' }, scopeOf(i)),
      el('td', {}, last, problems));
    tr.addEventListener('click', (e) => { if (!e.target.closest('button')) openEditor(i); });
    open.addEventListener('click', () => openEditor(i));
    rows.append(tr);
  }
  $('list').hidden = integrations.length === 0;
  $('list-empty').hidden = integrations.length !== 0;
  if (focused) rows.querySelector(`[data-open="${CSS.escape(focused)}"]`)?.focus();
}

// ------------------------------------------------------------------ the editor

let editing = null; // the saved integration's name, or null when adding
let fields = []; // [{key, def, input, stored, field, inSources}]
let source = null; // the chosen credential source's name; null for a type without sources
let dirty = false;
let busy = false;

const WORDS = { id: 'ID', url: 'URL', sas: 'SAS', tls: 'TLS', ca: 'CA', dns: 'DNS', s3: 'S3', ms: 'ms' };

function labelOf(key) {
  const words = key.split('_').map((w) => WORDS[w] ?? w);
  const first = words[0] ?? key;
  words[0] = first === first.toUpperCase() ? first : first[0].toUpperCase() + first.slice(1);
  return words.join(' ');
}

function fillTypeSelect(selected) {
  const select = $('f-type');
  select.replaceChildren(...[...types.values()].map((t) =>
    el('option', { value: t.type, selected: t.type === selected, text: `${t.type}: ${t.title ?? ''}` })));
  if (selected && !types.has(selected)) select.append(el('option', { value: selected, selected: true, text: selected }));
}

/** The form's input for one key of the type's definition. */
function inputFor(def, id, describedBy) {
  const common = { id, name: def.name, 'aria-describedby': describedBy };
  const unset = def.default === null || def.default === undefined ? '(not set)' : `(default: ${def.default})`;
  switch (def.kind) {
    case 'boolean':
      return el('select', common,
        el('option', { value: '', text: unset }),
        el('option', { value: 'true', text: 'true' }),
        el('option', { value: 'false', text: 'false' }));
    case 'enum':
      return el('select', common,
        el('option', { value: '', text: unset }),
        (def.values ?? []).map((v) => el('option', { value: v, text: v })));
    default: {
      const placeholder = def.kind === 'string-list' ? 'a, b, c'
        : def.default !== null && def.default !== undefined ? `default: ${def.default}` : null;
      return el('input', {
        ...common,
        type: def.secret ? 'password' : 'text',
        inputmode: def.kind === 'integer' ? 'numeric' : null,
        autocomplete: def.secret ? 'new-password' : 'off',
        spellcheck: 'false',
        placeholder,
      });
    }
  }
}

/**
 * The credential source of `values` (an integration or what was typed)
 * among the type's: the one its selector key chooses (`credentials =
 * "instance"`), else the one the server says is in use, else the first
 * whose own keys it has, else the first.
 */
function sourceOf(def, values) {
  const sources = def?.sources ?? [];
  if (!sources.length) return null;
  const v = values ?? {};
  const given = (k) => v[k] !== undefined && v[k] !== null && v[k] !== '';
  const found = sources.find((s) => s.selector && v[s.selector.key] === s.selector.value)
    ?? sources.find((s) => s.name === v.credential_source)
    ?? sources.find((s) => s.keys.some((k) => given(k.name)))
    ?? sources[0];
  return found.name;
}

/** The field of the credential source selector, for a type with sources. */
function sourceField(def) {
  // Problems about the selector key (`credentials`) are shown by this field.
  const dataKey = def.sources.find((s) => s.selector)?.selector.key ?? 'credential-source';
  const select = el('select', { id: 'f-source', name: 'credential-source', 'aria-describedby': 'help-source problem-source' },
    def.sources.map((s) => el('option', { value: s.name, text: s.label })));
  select.addEventListener('change', () => { applySource(select.value); dirty = true; });
  return el('div', { class: 'field', 'data-key': dataKey },
    el('label', { for: 'f-source' }, 'Credential source'),
    select,
    el('p', { class: 'help', id: 'help-source' }),
    el('p', { class: 'problem', id: 'problem-source', hidden: true }));
}

/** Shows the fields of credential source `name` and hides the other sources' ones. */
function applySource(name) {
  const def = types.get($('f-type').value);
  const chosen = def?.sources?.find((s) => s.name === name);
  if (!chosen) return;
  source = chosen.name;
  $('f-source').value = chosen.name;
  $('help-source').textContent = sentence(chosen.help);
  const own = new Map(chosen.keys.map((k) => [k.name, k.required]));
  for (const f of fields) {
    if (!f.inSources) continue;
    f.field.hidden = !own.has(f.key);
    f.req.hidden = !own.get(f.key);
  }
}

/**
 * Rebuilds the key fields for `typeName`, filled from `values` (an
 * integration or what was typed): the keys of every source, then, where
 * the type's first credential key stands, the source selector with each
 * source's own keys (only the chosen source's shown).
 */
function buildFields(typeName, values) {
  const def = types.get(typeName);
  const box = $('key-fields');
  box.replaceChildren();
  fields = [];
  source = null;
  const sources = def?.sources ?? [];
  const selectorKeys = new Set(sources.filter((s) => s.selector).map((s) => s.selector.key));
  const inSources = new Map(); // key -> the sources it belongs to
  for (const s of sources) for (const k of s.keys) inSources.set(k.name, [...(inSources.get(k.name) ?? []), s.name]);
  let credentials = null; // the fieldset of the credential sources, once placed
  for (const key of def?.keys ?? []) {
    if (selectorKeys.has(key.name)) continue; // set by the source selector
    const id = `f-${key.name}`;
    const helpId = `help-${key.name}`;
    const problemId = `problem-${key.name}`;
    const input = inputFor(key, id, `${helpId} ${problemId}`);
    const help = [sentence(key.help)];
    if (key.kind === 'string-list') help.push('Separate several with commas.');
    if (key.default !== null && key.default !== undefined && key.kind !== 'boolean' && key.kind !== 'enum') {
      help.push(`Default: ${key.default}.`);
    }
    const helpP = el('p', { class: 'help', id: helpId, text: help.filter(Boolean).join(' ') });
    const req = el('span', { class: 'req', text: 'required', title: 'Needed for the integration to work; you can still save without it and finish later.', hidden: !key.required });
    const field = el('div', { class: 'field', 'data-key': key.name },
      el('label', { for: id },
        labelOf(key.name), ' ', el('code', { class: 'key', text: key.name }),
        req,
        key.secret ? el('span', { class: 'secret', text: 'secret' }) : ''),
      input, helpP,
      el('p', { class: 'problem', id: problemId, hidden: true }));
    const entry = { key: key.name, def: key, input, stored: false, helpP, help: helpP.textContent, field, req,
      inSources: inSources.get(key.name) ?? null };
    setValue(entry, values?.[key.name]);
    if (entry.inSources) {
      if (!credentials) {
        credentials = el('div', { class: 'fields' }, sourceField(def));
        box.append(el('fieldset', { class: 'credentials', id: 'credentials' },
          el('legend', { text: 'Credentials' }), credentials));
      }
      credentials.append(field);
    } else {
      box.append(field);
    }
    fields.push(entry);
  }
  if (sources.length && !credentials) {
    // Sources without keys of their own only (none today): the selector alone.
    box.append(el('fieldset', { class: 'credentials', id: 'credentials' },
      el('legend', { text: 'Credentials' }), el('div', { class: 'fields' }, sourceField(def))));
  }
  if (sources.length) applySource(sourceOf(def, values));
}

/** `text` ending with a full stop, so that more sentences can follow. */
function sentence(text) {
  const t = String(text ?? '').trim();
  return !t || /[.!?)]$/.test(t) ? t : `${t}.`;
}

/** Puts a value from an integration (or what was typed) into a field. */
function setValue(f, value) {
  const { def, input } = f;
  f.stored = false;
  if (def.secret) {
    input.type = 'password';
    input.value = '';
    input.placeholder = '';
    f.helpP.textContent = f.help;
    f.field.querySelector('.forget')?.remove();
    if (value === MARKER) {
      // Write-only: the stored secret never comes back, only the marker.
      f.stored = true;
      input.placeholder = `${MARKER} (stored)`;
      f.helpP.textContent = `${f.help} A secret is stored: leave this empty to keep it, or type a new one.`;
      const forget = el('button', { type: 'button', class: 'quiet small forget', text: 'Remove stored secret' });
      forget.addEventListener('click', () => {
        f.stored = false;
        input.placeholder = '(removed on Save)';
        f.helpP.textContent = `${f.help} The stored secret will be removed when you save.`;
        forget.remove();
        dirty = true;
        input.focus();
      });
      f.helpP.after(forget);
      return;
    }
    if (typeof value === 'string' && value.startsWith('${')) {
      // A reference to an environment variable is not the secret: show it.
      input.type = 'text';
      f.helpP.textContent = `${f.help} Written as a reference: mediagate reads the secret from that environment variable.`;
    }
  }
  if (value === undefined || value === null) input.value = '';
  else if (Array.isArray(value)) input.value = value.join(', ');
  else input.value = String(value);
}

/** What the form says, as the PUT body: empty fields left out, the marker for kept secrets. */
function collectBody() {
  const body = {};
  // Keys stored but unknown to the form are sent back unchanged, never dropped.
  // Keys of the type that the form does not send (another source's) are left out.
  const original = editing ? integrations.find((i) => i.name === editing) : null;
  const def = types.get($('f-type').value);
  const known = new Set([...fields.map((f) => f.key), ...(def?.keys ?? []).map((k) => k.name)]);
  for (const [k, v] of Object.entries(original ?? {})) {
    if (!ANSWER_KEYS.has(k) && !known.has(k) && k !== 'name' && k !== 'type') body[k] = v;
  }
  body.name = $('f-name').value.trim();
  body.type = $('f-type').value;
  // The chosen credential source: its selector, and its own fields only (hidden ones are another source's).
  const selector = def?.sources?.find((s) => s.name === source)?.selector;
  if (selector) body[selector.key] = selector.value;
  for (const f of fields) {
    if (f.field.hidden) continue;
    const raw = f.input.value;
    const text = f.def.secret ? raw : raw.trim();
    if (text === '') {
      if (f.def.secret && f.stored) body[f.key] = MARKER;
      continue;
    }
    switch (f.def.kind) {
      case 'integer': body[f.key] = /^-?\d+$/.test(text) ? Number(text) : text; break; // the server explains a bad one
      case 'boolean': body[f.key] = text === 'true'; break;
      case 'string-list': {
        const list = text.split(',').map((s) => s.trim()).filter(Boolean);
        if (list.length) body[f.key] = list;
        break;
      }
      default: body[f.key] = text;
    }
  }
  return body;
}

function clearProblems() {
  for (const p of document.querySelectorAll('#form .problem')) { p.hidden = true; p.textContent = ''; }
  for (const i of document.querySelectorAll('#form [aria-invalid]')) i.removeAttribute('aria-invalid');
  for (const f of document.querySelectorAll('#form .field.has-problem')) f.classList.remove('has-problem');
}

/** Puts each problem next to its field; answers the ones no field shows. */
function showProblems(problems) {
  clearProblems();
  const elsewhere = [];
  for (const p of problems ?? []) {
    const key = String(p.key ?? '').split(/[.[]/)[0];
    const field = key ? document.querySelector(`#form .field[data-key="${CSS.escape(key)}"]`) : null;
    if (!field || field.hidden) { elsewhere.push(p); continue; }
    const out = field.querySelector('.problem');
    out.textContent = out.textContent ? `${out.textContent} ${p.message}` : p.message;
    out.hidden = false;
    field.classList.add('has-problem');
    field.querySelector('input, select')?.setAttribute('aria-invalid', 'true');
  }
  return elsewhere;
}

function result(kind, ...children) {
  const box = $('result');
  box.className = `result result-${kind}`;
  box.replaceChildren(...children.flat().filter(Boolean));
}

/** Switches the editor between adding and editing the saved integration `name`. */
function setMode(name) {
  editing = name;
  const nameInput = $('f-name');
  nameInput.readOnly = !!name;
  $('help-name').textContent = name
    ? 'A saved integration keeps its name: to rename it, add a new one and delete this one.'
    : 'A short name for this integration (lower-case letters, digits and -), used in the API, the logs and the metrics.';
  $('editor-title').textContent = name ? `Edit integration “${name}”` : 'Add integration';
  $('test').hidden = !name;
  $('delete').hidden = !name;
  $('save-hint').textContent = name
    ? 'Save replaces the stored configuration and tests the connection again.'
    : 'Save stores the integration, even unfinished, and tests the connection.';
  for (const tr of $('rows').children) {
    const open = tr.querySelector('[data-open]')?.dataset.open;
    if (open === name && name) tr.setAttribute('aria-current', 'true'); else tr.removeAttribute('aria-current');
  }
}

function openEditor(integration) {
  const editor = $('editor');
  editor.hidden = false;
  clearProblems();
  if (integration) {
    fillTypeSelect(integration.type);
    $('f-name').value = integration.name;
    buildFields(integration.type, integration);
    setMode(integration.name);
    const lines = [el('p', { class: 'result-head' }, 'Status: ', badge(integration.status))];
    if (integration.last_test) lines.push(el('p', {}, 'Last connection test:'), testSummary(integration.last_test));
    if (integration.problems?.length) lines.push(el('p', {}, 'Still missing:'), problemList(integration.problems));
    result('info', lines);
    showProblems(integration.problems);
  } else {
    const first = types.keys().next().value;
    fillTypeSelect(first);
    $('f-name').value = '';
    buildFields(first, null);
    setMode(null);
    result('none');
  }
  dirty = false;
  editor.scrollIntoView({ block: 'start' });
  (integration ? fields[0]?.input : $('f-type'))?.focus({ preventScroll: true });
}

function closeEditor() {
  $('editor').hidden = true;
  setMode(null);
  $('add').focus();
}

async function save() {
  const body = collectBody();
  if (!body.name) {
    showProblems([{ key: 'name', message: 'Give the integration a name first.' }]);
    result('fail', el('p', { class: 'result-head', text: 'Not saved: the integration needs a name.' }));
    $('f-name').focus();
    return;
  }
  result('busy', el('p', { text: `Saving “${body.name}” and testing its connection…` }));
  const answer = await api('PUT', `/api/integrations/${encodeURIComponent(body.name)}`, body);
  const j = answer.json ?? {};
  if (answer.status === 200 || answer.status === 201) {
    const saved = j.integration ?? body;
    // Show what is stored now: secrets come back as the marker.
    setMode(saved.name ?? body.name);
    fillTypeSelect(saved.type ?? body.type);
    buildFields(saved.type ?? body.type, saved);
    dirty = false;
    const elsewhere = showProblems(j.problems);
    const status = j.status ?? saved.status;
    const verb = answer.status === 201 ? 'Created' : 'Saved';
    const lines = [el('p', { class: 'result-head' }, `${verb} “${body.name}”. Status: `, badge(status))];
    if (j.test) lines.push(el('p', {}, j.test.ok ? 'Connection test passed:' : 'Connection test failed:'), testSummary(j.test));
    else if (status === 'incomplete') lines.push(el('p', { text: 'Not tested: keys it needs are missing. It is saved; finish it later.' }));
    if (j.problems?.length) lines.push(el('p', { text: 'Still missing:' }), problemList(j.problems));
    else if (elsewhere.length) lines.push(problemList(elsewhere));
    result(status === 'ok' ? 'ok' : status === 'incomplete' ? 'warn' : 'fail', lines);
    await loadList();
    return;
  }
  // Not saved: keep what the person typed, say why, and put each problem by its field.
  const elsewhere = showProblems(j.problems);
  const lines = [el('p', { class: 'result-head', text: `Not saved: ${errorText(answer)}` })];
  if (j.problems?.length) lines.push(problemList(j.problems));
  else if (elsewhere.length) lines.push(problemList(elsewhere));
  result('fail', lines);
}

async function testConnection() {
  if (!editing) return;
  const name = editing;
  result('busy', el('p', { text: `Testing the connection of “${name}”…` }));
  const answer = await api('POST', `/api/integrations/${encodeURIComponent(name)}/test`);
  if (!answer.ok || !answer.json) {
    result('fail', el('p', { class: 'result-head', text: `The connection test could not run: ${errorText(answer)}` }));
    return;
  }
  const test = answer.json;
  const lines = [
    el('p', { class: 'result-head', text: test.ok ? 'Connection test passed' : `Connection test failed: ${test.code ?? ''}` }),
    testSummary(test),
  ];
  if (dirty) lines.push(el('p', { class: 'muted', text: 'This tested the saved configuration: save to test your changes.' }));
  result(test.ok ? 'ok' : 'fail', lines);
  await loadList();
}

async function remove() {
  if (!editing) return;
  const name = editing;
  if (!confirm(`Delete the integration “${name}”?\n\nmediagate stops serving its buckets through it at once, and drops its cached objects.`)) return;
  result('busy', el('p', { text: `Deleting “${name}”…` }));
  const answer = await api('DELETE', `/api/integrations/${encodeURIComponent(name)}`);
  if (answer.status !== 204 && !answer.ok) {
    result('fail', el('p', { class: 'result-head', text: `Not deleted: ${errorText(answer)}` }));
    return;
  }
  $('editor').hidden = true;
  setMode(null);
  await loadList();
  $('list-status').textContent = `Deleted the integration “${name}”.`;
  $('add').focus();
}

/** Runs one editor action at a time (a second click while one runs does nothing). */
function guarded(action) {
  return async (e) => {
    e?.preventDefault();
    if (busy) return;
    busy = true;
    $('form').setAttribute('aria-busy', 'true');
    try {
      await action();
    } catch (err) {
      if (!(err instanceof Unreachable)) result('fail', el('p', { text: `Something went wrong: ${err.message}` }));
      else result('fail', el('p', { text: 'mediagate could not be reached: nothing was changed.' }));
    } finally {
      busy = false;
      $('form').removeAttribute('aria-busy');
    }
  };
}

function setupEditor() {
  $('add').addEventListener('click', () => openEditor(null));
  $('close-editor').addEventListener('click', closeEditor);
  $('f-type').addEventListener('change', () => {
    // Keep what was typed for the keys both types have.
    const typed = { credential_source: source };
    for (const f of fields) {
      if (!f.field.hidden) typed[f.key] = f.stored && f.input.value === '' ? MARKER : f.input.value;
    }
    buildFields($('f-type').value, typed);
    dirty = true;
  });
  $('form').addEventListener('input', () => { dirty = true; });
  $('form').addEventListener('submit', guarded(save));
  $('test').addEventListener('click', guarded(testConnection));
  $('delete').addEventListener('click', guarded(remove));
  $('refresh').addEventListener('click', async () => {
    $('list-status').textContent = '';
    await loadList().catch(() => {});
    $('list-status').textContent = `List refreshed ${exact(new Date())}.`;
  });
}

// ------------------------------------------------------------------ the cache

async function loadCache() {
  const answer = await api('GET', '/api/cache');
  if (!answer.ok || !answer.json) {
    $('figures').replaceChildren(el('div', {}, el('dt', { text: 'Cache' }), el('dd', { text: errorText(answer) })));
    return;
  }
  const c = answer.json;
  $('purge').hidden = c.enabled === false;
  if (c.enabled === false) {
    $('figures').replaceChildren(el('div', { class: 'figure wide' }, el('dt', { text: 'Cache' }),
      el('dd', { text: 'Off: this mediagate has no [cache] section, so every request goes to the storage.' })));
    return;
  }
  const lookups = (c.hits ?? 0) + (c.misses ?? 0);
  const ratio = typeof c.hit_ratio === 'number' ? c.hit_ratio : lookups ? c.hits / lookups : null;
  const fill = c.max_bytes ? c.bytes / c.max_bytes : 0;
  const figure = (term, ...value) => el('div', { class: 'figure' }, el('dt', { text: term }), el('dd', {}, ...value));
  $('figures').replaceChildren(
    figure('Stored', `${bytes(c.bytes)} of ${bytes(c.max_bytes)}`,
      el('meter', { min: 0, max: 1, value: Math.min(1, fill), 'aria-label': 'Cache fill', title: `${(fill * 100).toFixed(1)} % full` })),
    figure('Entries', count(c.entries)),
    lookups && ratio !== null
      ? figure('Hit ratio', `${(ratio * 100).toFixed(1)} %`)
      : figure('Hit ratio', '–', el('span', { class: 'note', text: 'no requests yet' })),
    figure('Hits', count(c.hits)),
    figure('Misses', count(c.misses)),
    figure('Evictions', count(c.evictions)),
    c.coalesced !== undefined ? figure('Coalesced', count(c.coalesced)) : '',
  );
}

function setupCache() {
  $('cache-refresh').addEventListener('click', () => loadCache().catch(() => {}));
  for (const radio of document.querySelectorAll('input[name="purge-by"]')) {
    radio.addEventListener('change', () => {
      $('purge-value').placeholder = radio.value === 'prefix' ? 's3://bucket/folder/' : 's3://bucket/key.jpg';
    });
  }
  $('purge').addEventListener('submit', async (e) => {
    e.preventDefault();
    const by = document.querySelector('input[name="purge-by"]:checked')?.value ?? 'locator';
    const value = $('purge-value').value.trim();
    const status = $('purge-status');
    if (!value) {
      status.textContent = by === 'prefix' ? 'Enter a prefix to purge, such as s3://bucket/folder/.' : 'Enter a locator to purge, such as s3://bucket/key.jpg.';
      $('purge-value').focus();
      return;
    }
    status.textContent = 'Purging…';
    try {
      const answer = await api('POST', '/api/cache/purge', { [by]: value });
      if (!answer.ok) { status.textContent = `Not purged: ${errorText(answer)}`; return; }
      const n = answer.json?.purged ?? 0;
      status.textContent = `Purged ${count(n)} cached ${n === 1 ? 'object' : 'objects'} for ${by} ${value}.`;
      await loadCache();
    } catch {
      status.textContent = 'Not purged: mediagate could not be reached.';
    }
  });
}

// ------------------------------------------------------------------ start

async function loadAll() {
  try {
    await loadTypes();
    await Promise.all([loadList(), loadCache()]);
    $('app').hidden = false;
  } catch (e) {
    if (!(e instanceof Unreachable)) banner(e.message);
  }
}

setupLogin();
setupEditor();
setupCache();
if (sessionStorage.getItem(TOKEN_KEY)) $('sign-out').hidden = false;
loadAll();
setInterval(refreshRelativeTimes, 30_000);
// Back to this tab: show what changed meanwhile (another admin, a reload of the file).
document.addEventListener('visibilitychange', () => {
  if (document.hidden || $('app').hidden || busy) return;
  loadList().catch(() => {});
  loadCache().catch(() => {});
});
setInterval(() => { if (!$('app').hidden && !document.hidden) loadCache().catch(() => {}); }, 10_000);
