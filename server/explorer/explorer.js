// The tda attribution explorer. It calls only tda-server's JSON API (server/http_gateway.h),
// sending the token of the token field (kept in sessionStorage) as "Authorization: Bearer ...",
// so everything it shows a script can get too. Text from the server is only ever set as
// textContent, never parsed as HTML.
//
// URL hash parameters run a query on load: #id=fashion-mnist/test/12&top_k=8, or
// #prompt=...&completion=..., #self_influence=1, #watch=<job id>; also token=, index= (a name of
// GET /v1/indexes).
// When the page has finished what the hash asked, body[data-state] is "done" (or "error").
'use strict';

const TOKEN_KEY = 'tda-explorer-token';
const $ = (id) => document.getElementById(id);

// The served index: its DescribeIndexResponse, and its name when GET /v1/indexes listed names.
const current = {
  description: null,
  name: null,
  side: 0,
  indexes: []
};

// An element with attributes (class, dataset, other attributes) and children (nodes or text).
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class')
      node.className = value;
    else if (key === 'dataset')
      Object.assign(node.dataset, value);
    else
      node.setAttribute(key, value);
  }
  node.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
  if (isError) console.error(text);
}

// An error answer of the JSON API: `status` is the gRPC code's name (e.g. "UNIMPLEMENTED").
class ApiError extends Error {
  constructor(message, status = '') {
    super(message);
    this.status = status;
  }
}

function authorizationHeaders() {
  const token = $('token').value.trim();
  return token ? {Authorization: `Bearer ${token}`} : {};
}

// One JSON API call; throws ApiError with the server's status name and message.
async function api(method, path, body) {
  const headers = authorizationHeaders();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch (e) {
    throw new ApiError(`${method} ${path}: HTTP ${response.status}, not JSON`);
  }
  if (!response.ok) {
    throw new ApiError(
        `${method} ${path}: ${json.status || response.status}: ${json.message || text}`,
        json.status || '');
  }
  return json;
}

// A request body for the chosen index: "index" only when the server listed indexes by name.
function withIndex(body) {
  return current.name ? {...body, index: current.name} : body;
}

function indexQuery() {
  return current.name ? `?index=${encodeURIComponent(current.name)}` : '';
}

function formatScore(score) {
  return (score >= 0 ? '+' : '') + Number(score).toExponential(3);
}

// "ekfac" for "METHOD_EKFAC".
function methodName(method) {
  return String(method).replace('METHOD_', '').toLowerCase().replace('_', '-');
}

function className(label) {
  const names = current.description.classNames || [];
  return names[label] !== undefined ? names[label] : `class ${label}`;
}

function isTextModel() {
  return current.description !== null && current.description.model.kind === 'gpt';
}

// Index picker: GET /v1/indexes is {"indexes": [{name, version, state, message, description}]}
// on a server with several indexes, else the one index's DescribeIndexResponse.
async function loadIndexes() {
  const answer = await api('GET', '/v1/indexes');
  const picker = $('index-picker');
  picker.replaceChildren();
  if (Array.isArray(answer.indexes)) {
    current.indexes = answer.indexes.map((entry) => ({...entry, named: true}));
  } else {
    current.indexes = [{name: answer.dataset, description: answer, named: false}];
  }
  current.indexes.forEach((entry, i) => {
    const label = entry.named ? `${entry.name} (v${entry.version}, ${entry.state})` : entry.name;
    picker.append(el('option', {value: String(i)}, label));
  });
  const wanted = hashParameters().get('index');
  const found = current.indexes.findIndex((entry) => entry.named && entry.name === wanted);
  picker.value = String(found >= 0 ? found : 0);
  chooseIndex();
}

function chooseIndex() {
  const entry = current.indexes[Number($('index-picker').value)];
  if (!entry) return;
  current.description = entry.description || null;
  current.name = entry.named ? entry.name : null;
  if (entry.named && entry.message) setStatus(entry.message);
  if (current.description === null) return;
  const d = current.description;
  const inputs = Number(d.model.inputDim);
  const side = Math.round(Math.sqrt(inputs));
  current.side = !isTextModel() && side * side === inputs ? side : 0;
  $('index-summary').textContent = `${d.dataset}: ${d.rows} rows, ${d.model.kind} model, methods ${
      (d.methods || []).map(methodName).join(', ')}`;
  $('image-query').hidden = current.side === 0;
  $('text-form').hidden = !isTextModel();
  $('id-form').hidden = isTextModel();
  $('draw-label')
      .replaceChildren(
          ...(d.classNames || []).map((name, label) => el('option', {value: String(label)}, name)));
}

// Grayscale features in [0, 1], row-major side x side, drawn on a new canvas.
function featureCanvas(features, side, attributes) {
  const canvas = el('canvas', {width: String(side), height: String(side), ...attributes});
  const context = canvas.getContext('2d');
  const image = context.createImageData(side, side);
  for (let i = 0; i < side * side; ++i) {
    const gray = Math.max(0, Math.min(255, Math.round(255 * (features[i] || 0))));
    image.data.set([gray, gray, gray, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

async function sampleCanvas(sampleId, attributes) {
  const sample = await api('GET', `/v1/samples/${encodeURIComponent(sampleId)}${indexQuery()}`);
  return featureCanvas(sample.features, current.side, attributes);
}

// Background of a token's score: green for positive, red for negative, alpha by |score| / max.
function shade(score, maxAbs) {
  const alpha = maxAbs > 0 ? (0.08 + 0.72 * Math.abs(score) / maxAbs).toFixed(3) : '0';
  return score >= 0 ? `rgba(46, 155, 69, ${alpha})` : `rgba(208, 71, 61, ${alpha})`;
}

// A document's text with one span per character shaded by the scores of its UTF-8 bytes, and
// the bytes [shared.start, shared.end) (the span shared verbatim with the completion) in a mark.
function tokenView(text, scores, shared) {
  const container = el('div', {class: 'tokens'});
  const maxAbs = scores.reduce((m, s) => Math.max(m, Math.abs(s)), 0);
  const encoder = new TextEncoder();
  let parent = container;
  let offset = 0;
  for (const character of text) {
    const bytes = encoder.encode(character).length;
    const inShared = shared !== null && offset >= shared.start && offset < shared.end;
    if (inShared && parent === container) {
      parent = el('mark', {class: 'shared', title: 'shared verbatim with the completion'});
      container.append(parent);
    } else if (!inShared && parent !== container) {
      parent = container;
    }
    let score = 0;
    for (let i = offset; i < offset + bytes && i < scores.length; ++i) score += scores[i];
    const token = el('span', {class: 'token', title: formatScore(score)}, character);
    token.style.backgroundColor = shade(score, maxAbs);
    parent.append(token);
    offset += bytes;
  }
  return container;
}

function sharedRange(hit) {
  const span = hit.sharedSpan;
  if (!span || Number(span.length) <= 0) return null;
  const start = Number(span.documentOffset);
  return {start, end: start + Number(span.length)};
}

function hitMeta(hit) {
  const sign = hit.score >= 0 ? 'positive' : 'negative';
  const label = isTextModel() ? '' : ` ${className(hit.label)}`;
  return el(
      'div', {class: 'meta'}, el('span', {class: `score ${sign}`}, formatScore(hit.score)),
      ` ${hit.sampleId}${label}`);
}

async function hitItem(hit) {
  const item = el('li', {dataset: {sampleId: hit.sampleId}});
  if (current.side > 0) {
    const canvas = await sampleCanvas(hit.sampleId, {
      class: 'sample',
      dataset: {sampleId: hit.sampleId, score: String(hit.score)},
    });
    item.append(el('div', {class: 'image-hit'}, canvas, hitMeta(hit)));
  } else {
    item.append(hitMeta(hit));
    if (hit.text) {
      item.append(tokenView(hit.text, hit.tokenScores || [], sharedRange(hit)));
    } else {
      item.append(el('div', {class: 'tokens'}, hit.preview));
    }
  }
  return item;
}

function sourceBars(totals) {
  const maxAbs = totals.reduce((m, t) => Math.max(m, Math.abs(t.sum)), 0);
  return totals.map((t) => {
    const bar = el('div', {class: `bar ${t.sum >= 0 ? 'positive' : 'negative'}`});
    bar.style.width = `${maxAbs > 0 ? (100 * Math.abs(t.sum)) / maxAbs : 0}%`;
    return el(
        'div', {class: 'bar-row', dataset: {source: t.source}}, t.source, el('div', {}, bar),
        `${formatScore(t.sum)} over ${t.count} rows`);
  });
}

function curlCommand(path, body) {
  return `curl -H "Authorization: Bearer $TDA_TOKEN" -H "Content-Type: application/json" \\\n` +
      `  -d '${JSON.stringify(body)}' ${location.origin}${path}`;
}

// Runs an AttributeRequest of one query and shows its result; `queryView` shows the query.
async function attribute(query, queryView, extra = {}) {
  const body = withIndex({queries: [query], topK: Number($('top-k').value) || 8, ...extra});
  setStatus('computing...');
  const started = performance.now();
  const answer = await api('POST', '/v1/attribute', body);
  const result = answer.results[0];
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  $('query-view')
      .replaceChildren(
          queryView,
          el('p', {class: 'meta'},
             `${result.queryId}: measured label ${
                 isTextModel() ? '(completion)' : className(result.label)}` +
                 (isTextModel() ? '' : `, predicted ${className(result.predictedLabel)}`) +
                 `, p = ${Number(result.labelProbability).toFixed(4)}, loss ${
                     Number(result.loss).toFixed(4)}` +
                 ` | ${answer.indexRows} rows scored by ${methodName(answer.method)} in ${
                     seconds} s`));
  $('proponents').replaceChildren(...(await Promise.all((result.proponents || []).map(hitItem))));
  $('opponents').replaceChildren(...(await Promise.all((result.opponents || []).map(hitItem))));
  $('sources').replaceChildren(...sourceBars(result.sourceTotals || []));
  $('curl').textContent = curlCommand('/v1/attribute', body);
  $('results').hidden = false;
  setStatus(`${(result.proponents || []).length} proponents, ${
      (result.opponents || []).length} opponents`);
}

async function explainId(sampleId) {
  $('sample-id').value = sampleId;
  const view = current.side > 0 ?
      await sampleCanvas(sampleId, {class: 'query-image', dataset: {sampleId}}) :
      el('p', {}, sampleId);
  await attribute({sampleId}, view);
}

async function explainText(prompt, completion) {
  $('prompt').value = prompt;
  $('completion').value = completion;
  const view = el('p', {class: 'tokens'}, prompt, el('strong', {}, completion));
  await attribute({text: {prompt, completion}}, view, {tokenScores: true});
}

// The drawing, downscaled to side x side, as grayscale features in [0, 1].
function drawingFeatures() {
  const side = current.side;
  const small = el('canvas', {width: String(side), height: String(side)});
  const context = small.getContext('2d');
  context.imageSmoothingQuality = 'high';
  context.drawImage($('draw'), 0, 0, side, side);
  const pixels = context.getImageData(0, 0, side, side).data;
  const features = [];
  for (let i = 0; i < side * side; ++i) {
    const [r, g, b] = pixels.subarray(4 * i, 4 * i + 3);
    features.push((0.299 * r + 0.587 * g + 0.114 * b) / 255);
  }
  return features;
}

async function explainDrawing() {
  const features = drawingFeatures();
  const label = Number($('draw-label').value) || 0;
  const view = featureCanvas(features, current.side, {class: 'query-image'});
  await attribute({raw: {features}, label}, view);
}

function clearDrawing() {
  const context = $('draw').getContext('2d');
  context.fillStyle = '#000';
  context.fillRect(0, 0, $('draw').width, $('draw').height);
}

function setUpDrawing() {
  const canvas = $('draw');
  clearDrawing();
  let drawing = false;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      (event.clientX - box.left) * (canvas.width / box.width),
      (event.clientY - box.top) * (canvas.height / box.height)
    ];
  };
  canvas.addEventListener('pointerdown', (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    const context = canvas.getContext('2d');
    context.beginPath();
    context.moveTo(...point(event));
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!drawing) return;
    const context = canvas.getContext('2d');
    Object.assign(
        context, {strokeStyle: '#fff', lineWidth: 22, lineCap: 'round', lineJoin: 'round'});
    context.lineTo(...point(event));
    context.stroke();
  });
  canvas.addEventListener('pointerup', () => {
    drawing = false;
  });
}

async function uploadImage(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = $('draw');
  clearDrawing();
  const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const [w, h] = [bitmap.width * scale, bitmap.height * scale];
  canvas.getContext('2d').drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  await explainDrawing();
}

async function rankSelfInfluence() {
  setStatus('ranking self-influence...');
  const body = withIndex({topK: 10, byDocument: isTextModel()});
  const answer = await api('POST', '/v1/self-influence', body);
  const median = Number(answer.median);
  const items = await Promise.all((answer.entries || []).map(async (entry) => {
    const ratio = median > 0 ? ` (${(entry.score / median).toFixed(1)} x median)` : '';
    const meta =
        el('div', {class: 'meta'}, `${formatScore(entry.score)}${ratio} ${entry.sampleId}`);
    const item = el('li', {dataset: {sampleId: entry.sampleId}});
    if (current.side > 0) {
      item.append(
          el('div', {class: 'image-hit'},
             await sampleCanvas(
                 entry.sampleId, {class: 'sample', dataset: {sampleId: entry.sampleId}}),
             el('div', {}, meta, el('div', {class: 'meta'}, className(entry.label)))));
    } else {
      item.append(meta, el('div', {class: 'tokens'}, entry.preview));
    }
    return item;
  }));
  $('self-influence').replaceChildren(...items);
  const ranked = isTextModel() ? 'documents' : 'rows';
  setStatus(`self-influence of ${answer.count} ${ranked} (${methodName(answer.method)})`);
}

function jobRow(job) {
  const progress = el('progress', {max: '1', value: String(job.progress || 0)});
  const watch = el('button', {type: 'button'}, 'Watch');
  watch.addEventListener('click', () => run(() => watchJob(job.id)));
  return el(
      'tr', {dataset: {jobId: job.id}}, el('td', {}, job.id), el('td', {}, job.kind),
      el('td', {}, job.state.replace('JOB_STATE_', '')), el('td', {}, progress),
      el('td', {}, job.stage || ''), el('td', {}, job.submitter || ''), el('td', {}, watch));
}

async function listJobs() {
  try {
    const answer = await api('GET', '/v1/jobs?limit=20');
    const header =
        el('tr', {},
           ...['id', 'kind', 'state', 'progress', 'stage', 'submitter', ''].map(
               (name) => el('th', {}, name)));
    $('jobs').replaceChildren(header, ...(answer.jobs || []).map(jobRow));
  } catch (error) {
    const why = error.status === 'UNIMPLEMENTED' ? 'this server runs no jobs (no --state-dir)' :
                                                   `jobs unavailable: ${error.message}`;
    $('jobs').replaceChildren(el('tr', {}, el('td', {}, why)));
  }
}

const FINAL_JOB_STATES =
    ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_INTERRUPTED'];

// GET /v1/jobs/{id}:watch: newline-delimited JSON, one JobUpdate per line, until the job ends.
async function watchJob(id) {
  const view = $('job-watch');
  const progress = el('progress', {max: '1', value: '0'});
  const line = el('span', {}, `job ${id}: waiting...`);
  const log = el('pre', {});
  view.replaceChildren(el('div', {}, progress, ' ', line), log);
  const response =
      await fetch(`/v1/jobs/${encodeURIComponent(id)}:watch`, {headers: authorizationHeaders()});
  if (!response.ok) {
    const error = await response.json();
    throw new ApiError(`watch job ${id}: ${error.status}: ${error.message}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let finished = false;
  while (!finished) {
    const {value, done} = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, {stream: true});
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const text of lines.filter((l) => l.trim() !== '')) {
      const update = JSON.parse(text);
      if (update.error) throw new ApiError(`watch job ${id}: ${update.error.message}`);
      const job = update.job;
      progress.value = job.progress || 0;
      line.textContent = `job ${job.id} ${job.kind}: ${job.state.replace('JOB_STATE_', '')} ` +
          `${Math.round(100 * (job.progress || 0))}% ${job.stage || ''}`;
      log.append(...(update.newLogLines || []).map((l) => `${l.line}\n`));
      finished = FINAL_JOB_STATES.includes(job.state);
    }
  }
  await reader.cancel();  // the final update is the last; do not wait for the stream's end
  await listJobs();
}

function hashParameters() {
  return new URLSearchParams(location.hash.slice(1));
}

// Runs an action, showing its error; true when it succeeded.
async function run(action) {
  try {
    await action();
    return true;
  } catch (error) {
    setStatus(error.message, true);
    return false;
  }
}

async function connect() {
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  if (!(await run(loadIndexes))) return false;
  await listJobs();
  return true;
}

async function start() {
  const hash = hashParameters();
  $('token').value = hash.get('token') || sessionStorage.getItem(TOKEN_KEY) || '';
  if (hash.has('token')) {  // kept in sessionStorage (connect), not in the address bar or history
    const rest = new URLSearchParams(hash);
    rest.delete('token');
    history.replaceState(null, '', `${location.pathname}${location.search}#${rest}`);
  }
  if (hash.has('top_k')) $('top-k').value = hash.get('top_k');
  setUpDrawing();
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    connect();
  });
  $('index-picker').addEventListener('change', chooseIndex);
  $('id-form').addEventListener('submit', (event) => {
    event.preventDefault();
    run(() => explainId($('sample-id').value.trim()));
  });
  $('text-form').addEventListener('submit', (event) => {
    event.preventDefault();
    run(() => explainText($('prompt').value, $('completion').value));
  });
  $('draw-clear').addEventListener('click', clearDrawing);
  $('draw-explain').addEventListener('click', () => run(explainDrawing));
  $('upload').addEventListener('change', (event) => {
    if (event.target.files.length > 0) run(() => uploadImage(event.target.files[0]));
  });
  $('self-influence-button').addEventListener('click', () => run(rankSelfInfluence));
  $('jobs-refresh').addEventListener('click', listJobs);

  let ok = await connect();
  if (ok && hash.has('id')) ok = await run(() => explainId(hash.get('id')));
  if (ok && hash.has('completion')) {
    ok = await run(() => explainText(hash.get('prompt') || '', hash.get('completion')));
  }
  if (ok && hash.has('self_influence')) ok = await run(rankSelfInfluence);
  if (ok && hash.has('watch')) ok = await run(() => watchJob(hash.get('watch')));
  document.body.dataset.state = ok ? 'done' : 'error';
}

document.addEventListener('DOMContentLoaded', start);
