// mod_sse dashboard: see dashboard.html.
//
// Stats: one EventSource on the stats channel; each "stats" event carries
// the relay, every child's counters (totals since the child started) and
// every channel's subscriber count.  Rates are the change of the summed
// counters between two stats events.
//
// Latest events: one stream per watched channel.  A stream on several
// channels (?channel=a,b) does not say which channel an event came from,
// and EventSource only hands out events whose names a listener was added
// for, so each watched channel gets its own fetch() stream, parsed here.
// At most 4 are watched: with the stats stream that is 5 of the 6
// connections a browser opens to one HTTP/1.1 server.
//
// Namespaces: every channel belongs to one (a virtual host's ServerName, or
// SSENamespace).  The stats event names the channels of its own namespace
// only (its top-level "namespace") and counts the others' streams; a
// channel is known here by its key "namespace/name", and the stream
// location (STREAM_URL, under the same server as the stats channel)
// reaches that namespace only.
'use strict';

const params = new URLSearchParams(location.search);
const STATS_CHANNEL = params.get('stats') || 'sse-stats';
const STREAM_URL = params.get('stream') || 'stream';    // relative: works under any prefix
const MAX_WATCHED = 4;
const KEEP_EVENTS = 5;
const CHART_SECONDS = 120;

const $ = id => document.getElementById(id);

const state = {
  prev: null,            // the previous stats event
  points: [],            // {t, pub, del} per stats event, for the chart
  watched: new Map(),    // channel key (namespace/name) -> ChannelReader
  events: new Map(),     // channel key -> [{at, event, id, data}], newest first
  lastStats: null,
  namespace: null,       // the stats channel's, from the last stats event
};
window.sseDashboard = state;     // for the browser test and the curious

// --- formatting -------------------------------------------------------------

function fmtInt(n) { return Number(n).toLocaleString('en-US'); }
function fmtRate(r) { return r == null ? '–' : r < 10 ? r.toFixed(1) : fmtInt(Math.round(r)); }
function fmtBytes(n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
function fmtTime(d) { return d.toTimeString().slice(0, 8); }
function isPrivate(ch) { return ch.startsWith('private-'); }
function shownName(ch) { return isPrivate(ch) ? ch.slice(0, 12) + '…' : ch; }

// Every channel of a stats event is in the stats channel's namespace (the
// event's top-level "namespace"): its key, and whether it is the stats
// channel itself.
function keyOf(c) { return `${state.namespace}/${c.channel}`; }
function isStats(c) { return c.channel === STATS_CHANNEL; }
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// --- the stats stream -------------------------------------------------------

function sum(children, key) {
  return children.reduce((t, c) => t + (Number(c[key]) || 0), 0);
}

// Per-second rates between two stats events, without the stats events
// themselves: each one is delivered once to every stats subscriber and
// counted as published in each child holding one (at most min(subscribers,
// children)).
function rates(prev, cur) {
  const dt = (cur.time - prev.time) / 1000;
  if (dt <= 0) return null;
  const ticks = Math.max(1, Math.round(dt));
  const subs = (prev.channels.find(isStats) || {}).subscribers || 0;
  const own = { del: ticks * subs, pub: ticks * Math.min(subs, prev.children.length) };
  const d = k => sum(cur.children, k) - sum(prev.children, k);
  // a child that exits takes its totals with it: no rate for that second
  if (d('delivered') < 0 || d('published') < 0) return null;
  return {
    del: Math.max(0, d('delivered') - own.del) / dt,
    pub: Math.max(0, d('published') - own.pub) / dt,
  };
}

function onStats(s) {
  state.lastStats = s;
  state.namespace = s.namespace != null ? s.namespace : '';
  $('hint').hidden = true;
  $('updated').textContent = 'updated ' + fmtTime(new Date(s.time));
  const streams = sum(s.children, 'streams');
  $('streams').textContent = fmtInt(streams);
  $('channels-count').textContent = fmtInt(s.channels.length);
  const r = s.relay;
  renderLosses(s);
  $('relay').textContent = `pid ${r.pid}, ${r.brokers} children, cluster ${r.cluster}; ` +
    `history ${fmtInt(r.history_events)} events, ${fmtBytes(r.history_bytes)}`;
  if (state.prev) {
    const rt = rates(state.prev, s);
    if (rt) {
      state.points.push({ t: s.time, pub: rt.pub, del: rt.del });
      $('rate-delivered').textContent = fmtRate(rt.del);
      $('rate-published').textContent = fmtRate(rt.pub);
    }
  }
  state.prev = s;
  while (state.points.length && state.points[0].t < s.time - CHART_SECONDS * 1000) {
    state.points.shift();
  }
  drawChart();
  renderChildren(s.children);
  watch(s.channels);
  renderChannels(s.channels);
}

function openStats() {
  const es = new EventSource(`${STREAM_URL}?channel=${encodeURIComponent(STATS_CHANNEL)}`);
  const status = $('status');
  let timer = null;
  es.onopen = () => {
    status.textContent = 'live';
    status.className = 'pill live';
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!state.lastStats) {
        const hint = $('hint');
        hint.textContent = `Connected, but no stats yet: is "SSEStatsChannel ${STATS_CHANNEL}" ` +
          'in the server configuration?  (Another channel: dashboard.html?stats=NAME)';
        hint.hidden = false;
      }
    }, 3000);
  };
  es.onerror = () => {
    status.textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting…';
    status.className = 'pill down';
  };
  es.addEventListener('stats', e => {
    let s;
    try { s = JSON.parse(e.data); } catch (err) { return; }
    onStats(s);
  });
}

// --- losses ----------------------------------------------------------------------

// What clients missed or were refused.  The relay's counters (history lost,
// publishes refused, streams that ended with their child) count since the
// relay started, its starts and upgrades since httpd started; dropped as
// slow adds up the children running now; the per-client refusals are the
// server's, the same in every child's record.  '–': a server too old to
// send the number.
function renderLosses(s) {
  const r = s.relay;
  const most = k => Math.max(0, ...s.children.map(c => c[k] || 0));
  const show = (id, n) => {
    const e = $(id);
    e.textContent = n == null || Number.isNaN(n) ? '–' : fmtInt(n);
    if (e.classList.contains('loss')) e.classList.toggle('nonzero', n > 0);
  };
  const relay = k => (r[k] == null ? null : Number(r[k]));
  show('loss-history-lost', relay('history_lost'));
  show('loss-refused-store', relay('refused_store'));
  show('loss-refused-late', relay('refused_late'));
  show('loss-dropped-slow', sum(s.children, 'dropped_slow'));
  show('loss-dropped-limit', most('client_refused'));
  show('loss-refused-limit', sum(s.children, 'refused_limit'));
  show('loss-dropped-restart', relay('dropped_exit'));
  show('loss-relay-restarts', r.relay_starts == null ? null : Math.max(0, r.relay_starts - 1));
  show('loss-relay-upgrades', relay('relay_upgrades'));
  const cap = most('clients_at_cap');
  $('clients-at-cap').textContent = `${fmtInt(cap)} client ${cap === 1 ? 'address' : 'addresses'} ` +
    'at the cap in the last minute';
}

// --- the chart ----------------------------------------------------------------

function niceMax(v) {
  if (v <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart() {
  const cv = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth, h = cv.clientHeight;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(h * dpr);
  }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const left = 48, right = 10, top = 10, bottom = 22;
  const pw = w - left - right, ph = h - top - bottom;
  const now = state.prev ? state.prev.time : Date.now();
  const max = niceMax(Math.max(0, ...state.points.map(p => Math.max(p.pub, p.del))));
  const x = t => left + pw * (1 - (now - t) / (CHART_SECONDS * 1000));
  const y = v => top + ph * (1 - v / max);

  g.font = '11px system-ui, sans-serif';
  g.fillStyle = css.getPropertyValue('--muted').trim() || '#666';
  g.strokeStyle = css.getPropertyValue('--line').trim() || '#ddd';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
    g.fillText(v >= 10 ? fmtInt(Math.round(v)) : String(+v.toFixed(2)), left - 6, yy);
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (let s = CHART_SECONDS; s >= 0; s -= 30) {
    g.fillText(s ? `-${s}s` : 'now', x(now - s * 1000), h - bottom + 6);
  }
  for (const [key, color] of [['pub', '--pub'], ['del', '--del']]) {
    const pts = state.points;
    if (!pts.length) continue;
    g.strokeStyle = css.getPropertyValue(color).trim();
    g.lineWidth = 2;
    g.lineJoin = 'round';
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo : g.moveTo).call(g, x(p.t), y(p[key])));
    if (pts.length === 1) g.lineTo(x(pts[0].t) - 2, y(pts[0][key]));
    g.stroke();
  }
}
window.addEventListener('resize', drawChart);

// --- tables ---------------------------------------------------------------------

function renderChannels(channels) {
  const tbody = $('channels').tBodies[0];
  const rows = [...channels].sort((a, b) => b.subscribers - a.subscribers ||
                                            a.channel.localeCompare(b.channel));
  const max = Math.max(1, ...rows.map(c => c.subscribers));
  tbody.replaceChildren(...rows.map(c => {
    const tr = el('tr');
    tr.dataset.namespace = state.namespace;
    tr.dataset.channel = c.channel;
    const name = el('td', state.watched.has(keyOf(c)) ? 'watched'
                          : isStats(c) ? 'stats-chan' : '',
                    shownName(c.channel) + (isStats(c) ? ' (stats)' : ''));
    const n = el('td', 'num subs', fmtInt(c.subscribers));
    const bar = el('td', 'bar');
    const b = el('div');
    b.style.width = (100 * c.subscribers / max) + '%';
    bar.append(b);
    tr.append(name, n, bar);
    return tr;
  }));
}

function renderChildren(children) {
  const tbody = $('children').tBodies[0];
  const keys = ['streams', 'channels', 'published', 'delivered', 'bytes',
                'dropped_slow', 'opened', 'closed'];
  tbody.replaceChildren(...[...children].sort((a, b) => a.pid - b.pid).map(c => {
    const tr = el('tr');
    tr.append(el('td', '', String(c.pid)),
              ...keys.map(k => el('td', 'num', k === 'bytes' ? fmtBytes(c[k]) : fmtInt(c[k]))));
    return tr;
  }));
}

// --- watched channels -------------------------------------------------------------

// Keep watching the busiest channels.  A channel's own count includes this
// page once it is watched, so it is compared without that one; a watched
// channel that only this page still listens to is let go, and another
// replaces a watched one only when it has strictly more subscribers.
// Only channels of the stats channel's namespace: STREAM_URL reaches no
// other.  Maps are keyed by namespace/name.
function watch(channels) {
  const others = new Map();    // key -> [subscribers but this page, name]
  for (const c of channels) {
    if (isStats(c) || isPrivate(c.channel)) continue;
    const key = keyOf(c);
    const n = c.subscribers - (state.watched.has(key) ? 1 : 0);
    if (n > 0) others.set(key, [n, c.channel]);
  }
  for (const key of [...state.watched.keys()]) {
    if (!others.has(key)) unwatch(key);
  }
  const count = key => others.get(key)[0];
  const candidates = [...others.keys()]
    .filter(key => !state.watched.has(key))
    .sort((a, b) => count(b) - count(a) || a.localeCompare(b));
  for (const key of candidates) {
    if (state.watched.size >= MAX_WATCHED) {
      const weakest = [...state.watched.keys()].sort((a, b) => count(a) - count(b))[0];
      if (!(count(key) > count(weakest))) break;
      unwatch(weakest);
    }
    state.watched.set(key, new ChannelReader(key, others.get(key)[1]));
  }
  renderEvents();
}

function unwatch(key) {
  state.watched.get(key).close();
  state.watched.delete(key);
  state.events.delete(key);
}

function onChannelEvent(key, ev) {
  if (!state.watched.has(key)) return;
  const list = state.events.get(key) || [];
  list.unshift(ev);
  list.length = Math.min(list.length, KEEP_EVENTS);
  state.events.set(key, list);
  scheduleEvents();
}

// At most one redraw of the event lists per frame, however fast they come.
let eventsPending = false;
function scheduleEvents() {
  if (eventsPending) return;
  eventsPending = true;
  requestAnimationFrame(() => { eventsPending = false; renderEvents(); });
}

function renderEvents() {
  const box = $('events');
  const keys = [...state.watched.keys()].sort();
  if (!keys.length) {
    box.replaceChildren(el('p', 'muted', 'No channel with subscribers yet.'));
    return;
  }
  box.replaceChildren(...keys.map(key => {
    const reader = state.watched.get(key);
    const div = el('div', 'chan-events');
    div.dataset.namespace = reader.namespace;
    div.dataset.channel = reader.channel;
    div.append(el('h3', '', reader.channel + (reader.connected ? '' : ' (connecting…)')));
    const ol = el('ol');
    for (const e of state.events.get(key) || []) {
      const li = el('li');
      li.dataset.id = e.id;
      const meta = el('div', 'ev-meta');
      meta.append(el('span', 'ev-name', e.event), `id ${e.id} · ${fmtTime(e.at)}`);
      const data = e.data.length > 300 ? e.data.slice(0, 300) + '…' : e.data;
      li.append(meta, el('div', 'ev-data', data));
      ol.append(li);
    }
    if (!ol.children.length) ol.append(el('li', 'muted', 'no events yet'));
    div.append(ol);
    return div;
  }));
}

// One text/event-stream over fetch(), parsed as a browser would (WHATWG
// rules for lines and fields), reconnecting with the last id it saw.  The
// first connection sends Last-Event-ID "earliest": the server answers with
// the history it keeps, so the latest events show at once, and does not
// count it as a resume whose history was lost (an unknown id such as "0"
// would be, and would show among the losses).
class ChannelReader {
  constructor(key, channel) {
    this.key = key;                 // namespace/name
    this.namespace = key.slice(0, key.length - channel.length - 1);
    this.channel = channel;         // the name, in STREAM_URL's namespace
    this.lastId = 'earliest';
    this.retry = 2000;
    this.connected = false;
    this.ctrl = new AbortController();
    this.run();
  }

  close() { this.ctrl.abort(); }

  async run() {
    while (!this.ctrl.signal.aborted) {
      try {
        const res = await fetch(`${STREAM_URL}?channel=${encodeURIComponent(this.channel)}`, {
          headers: { 'Accept': 'text/event-stream', 'Last-Event-ID': this.lastId },
          cache: 'no-store', signal: this.ctrl.signal,
        });
        if (res.ok && res.body) {
          this.connected = true;
          scheduleEvents();
          await this.read(res.body.pipeThrough(new TextDecoderStream()).getReader());
        }
      } catch (err) {
        // aborted, or the connection failed: retry below unless closed
      }
      this.connected = false;
      if (this.ctrl.signal.aborted) return;
      scheduleEvents();
      await new Promise(ok => setTimeout(ok, this.retry));
    }
  }

  async read(reader) {
    let buf = '', ev = { data: [], event: '', id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let m;
      while ((m = /\r\n|\r|\n/.exec(buf)) !== null) {
        if (m[0] === '\r' && m.index === buf.length - 1) break;   // maybe a CRLF split
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === '') {
          if (ev.id !== null) this.lastId = ev.id;
          if (ev.data.length) {
            onChannelEvent(this.key, { at: new Date(), event: ev.event || 'message',
                                           id: this.lastId, data: ev.data.join('\n') });
          }
          ev = { data: [], event: '', id: null };
          continue;
        }
        if (line[0] === ':') continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? '' : line.slice(i + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'data') ev.data.push(v);
        else if (field === 'event') ev.event = v;
        else if (field === 'id' && !v.includes('\0')) ev.id = v;
        else if (field === 'retry' && /^\d+$/.test(v)) this.retry = Number(v);
      }
    }
  }
}

openStats();
drawChart();
