// The operator's screen: follows the station's event stream (GET /events) and shows
// each position's operator, scale, state and last decision, the fill's progress and
// the station's banners. "/" shows every position, "/p/{id}" one, full screen. A block
// sounds an alarm (Web Audio) until it is acknowledged here or the next cylinder is
// scanned. Read-only apart from POST /p/{id}/ack; nothing is fetched from elsewhere.
'use strict';

(function () {
  const only = location.pathname.startsWith('/p/')
    ? decodeURIComponent(location.pathname.slice(3)) : null;
  if (only) document.body.classList.add('single');

  // What the station said, as the last snapshot and the events since.
  const st = { station: null, online: true, outbox: {}, replica: {}, positions: {}, order: [] };
  // For tests and benchmarks: what the page did, and when.
  const probe = window.pingmaScreen = {
    events: 0, snapshots: 0, beeps: 0, alarm: false, latencies: [], weights: [],
  };

  // Reason titles, Chinese first (DOMAIN.md "Refill rules"), and what the operator does.
  const REASONS = {
    UNKNOWN_CODE: ['未登记气瓶（黑气瓶）', 'Unregistered cylinder', ['aside', 'supervisor']],
    NOT_OWNED: ['非自有、非托管气瓶', 'Not owned by this company, no custody', ['aside', 'supervisor']],
    INSPECTION_OVERDUE: ['超期未检', 'Overdue for inspection', ['aside', 'inspect']],
    INSPECTION_FAILED: ['检验不合格', 'Failed its inspection', ['aside', 'scrap']],
    SERVICE_LIFE_EXCEEDED: ['超出使用年限', 'Past its service life', ['aside', 'scrap']],
    ASSESSMENT_FAILED: ['安全评估不合格', 'Failed its safety assessment', ['aside', 'scrap']],
    DUAL_PHASE_BANNED: ['气液双相气瓶禁止充装', 'Dual-phase cylinder: banned', ['aside', 'scrap']],
    RECALLED: ['召回气瓶（产品黑名单）', 'Recalled', ['aside', 'scrap']],
    SCRAP_PENDING: ['待报废气瓶', 'Flagged for scrapping', ['aside', 'scrap']],
    SCRAPPED: ['已报废气瓶', 'Scrapped', ['aside', 'supervisor']],
    DEFECT_FOUND: ['充装前检查发现缺陷', 'Defect found before filling', ['aside']],
    TARE_MISMATCH: ['皮重不符（码瓶不符）', 'Tare does not match: wrong code?', ['aside', 'label', 'supervisor']],
    CLONE_SUSPECTED: ['疑似克隆码', 'Suspected cloned code', ['aside', 'supervisor']],
    STATION_LICENSE_INVALID: ['充装许可无效或本站被锁定', 'Filling licence invalid or station locked', ['supervisor']],
    OPERATOR_NOT_CERTIFIED: ['操作员无有效作业证', 'Operator not certified', ['supervisor']],
  };
  const ACTIONS = {
    aside: ['将气瓶放到一边，不得充装', 'Set the cylinder aside: do not fill it'],
    inspect: ['送检验机构检验', 'Send it for inspection'],
    scrap: ['移交检验机构报废', 'Hand it to the inspection agency for scrapping'],
    label: ['核对气瓶与标签', 'Check the cylinder against its label'],
    supervisor: ['呼叫主管', 'Call the supervisor'],
    decant: ['扣留气瓶，抽残后复秤', 'Hold the cylinder, decant it and re-weigh'],
  };
  const STATES = {
    idle: ['○', '空闲', 'idle'], scanned: ['⟳', '已扫码', 'scanned'],
    checking: ['⟳', '检查中', 'checking'], blocked: ['✖', '禁止充装', 'blocked'],
    filling: ['▶', '充装中', 'filling'], recording: ['✎', '记录中', 'recording'],
  };
  const RESULTS = {
    ok: ['✔ 合格', 'ok', 'ok'], overfill: ['✖ 超装', 'overfilled', 'bad'],
    underfill: ['⚠ 欠装', 'underfilled', 'bad'], interrupted: ['⚠ 中断', 'interrupted', 'bad'],
  };
  const UPLOADS = {
    uploaded: ['✔ 已上传', 'uploaded'], pending: ['⟳ 待上传', 'waiting to upload'],
    rejected: ['✖ 注册中心拒收', 'refused by the registry'], begun: ['⟳ 记录中', 'recording'],
  };

  function el(tag, cls, ...kids) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  const en = (text) => el('span', 'en', text);
  const kg = (v) => (typeof v === 'number' ? v.toFixed(2) : '—');
  const clock = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
  };
  const ago = (iso) => {
    if (!iso) return null;
    const m = Math.round((Date.now() - Date.parse(iso)) / 60000);
    return m < 1 ? ['刚刚', 'just now'] : [m + ' 分钟前', m + ' min ago'];
  };

  function pos(id) {
    if (!st.positions[id]) {
      st.positions[id] = { id, scale: {}, state: 'idle', alarm: '' };
      st.order.push(id);
    }
    return st.positions[id];
  }

  // -- events ---------------------------------------------------------------------------
  function apply(e) {
    if (e.event === 'snapshot') {
      probe.snapshots++;
      st.station = e.station_id;
      st.online = e.online;
      st.outbox = e.outbox || {};
      st.replica = e.replica || {};
      st.positions = {};
      st.order = [];
      for (const p of e.positions || []) {
        const q = pos(p.id);
        Object.assign(q, p);
        q.upload = p.last_fill_upload || null;
      }
      return;
    }
    if (e.event === 'station') {
      st.online = e.online;
      st.outbox = e.outbox || st.outbox;
      st.replica = e.replica || st.replica;
      return;
    }
    if (e.event === 'online' || e.event === 'offline') {
      st.online = e.event === 'online';
      return;
    }
    if (e.event === 'upload' || e.event === 'upload_rejected') {
      for (const id of st.order) {
        const p = st.positions[id];
        if (p.last_fill && p.last_fill.event_id === e.event_id) {
          p.upload = e.event === 'upload' ? 'uploaded' : 'rejected';
        }
      }
      bump('pending', -1);
      if (e.event === 'upload_rejected') bump('rejected', 1);
      return;
    }
    if (e.event === 'check_upload') { bump('checks_pending', -1); return; }
    if (e.event === 'check_upload_rejected') {
      bump('checks_pending', -1);
      bump('checks_rejected', 1);
      return;
    }
    if (!e.position) return;
    const p = pos(e.position);
    switch (e.event) {
      case 'state': p.state = e.state; p.alarm = e.alarm || ''; break;
      case 'weight':
        p.scale.gross_kg = e.gross_kg; p.scale.stable = e.stable; p.scale.connected = true;
        if (p.fill) probe.weights.push(e.gross_kg);
        break;
      case 'scale_connected': p.scale.connected = true; break;
      case 'scale_unavailable': p.scale.connected = false; break;
      case 'scale_fault': p.scale.fault = e.fault; break;
      case 'operator': p.operator_id = e.operator_id; break;
      case 'scan': p.last_scan = e.raw; p.note = null; p.last_decision = null; break;
      case 'scan_refused': case 'fill_refused': case 'scan_ignored': p.note = e.why; break;
      case 'decision':
        p.last_decision = e;
        if (e.offline && e.decision !== 'error') bump('checks_pending', 1);
        break;
      case 'fill_started': p.fill = e; p.last_fill = null; p.upload = null; break;
      case 'fill_finished':
        p.fill = null; p.last_fill = e.record; p.upload = 'pending'; bump('pending', 1);
        break;
      case 'acknowledged': p.alarm = ''; if (p.state === 'blocked') p.state = 'idle'; break;
      default: break;
    }
  }
  function bump(key, by) {
    if (typeof st.outbox[key] === 'number') st.outbox[key] = Math.max(0, st.outbox[key] + by);
  }

  // -- drawing --------------------------------------------------------------------------
  function banners() {
    const out = [];
    const b = (cls, zh, enText) => out.push(el('p', 'banner ' + cls, zh + ' ', en(enText)));
    if (!live) b('bad', '⚠ 与充装站的连接中断，正在重连…', 'Lost the station: reconnecting…');
    if (!st.online) {
      const when = ago(st.replica.synced_at);
      b('warn', '⚠ 离线模式：由本站副本判定' + (when ? '（副本同步于' + when[0] + '）' : '（副本从未同步）'),
        'Offline: decisions from the replica' + (when ? ' (synced ' + when[1] + ')' : ' (never synced)'));
    }
    const waiting = (st.outbox.pending || 0) + (st.outbox.checks_pending || 0);
    if (waiting > 0) {
      const since = st.outbox.oldest_pending ? new Date(st.outbox.oldest_pending) : null;
      const hm = since ? since.toTimeString().slice(0, 5) : '';
      b('info', '⇡ ' + waiting + ' 条记录待上传' + (hm ? '，最早 ' + hm : ''),
        waiting + (waiting === 1 ? ' record' : ' records') + ' waiting to upload' +
        (hm ? ', the oldest from ' + hm : ''));
    }
    const refused = (st.outbox.rejected || 0) + (st.outbox.checks_rejected || 0);
    if (refused > 0) {
      b('bad', '✖ 注册中心拒收 ' + refused + ' 条记录，请联系主管',
        'The registry refused ' + refused + (refused === 1 ? ' record' : ' records') +
        ': call the supervisor');
    }
    for (const id of shown()) {
      const p = st.positions[id];
      if (p.scale && p.scale.connected === false) {
        b('bad', '⚠ 工位 ' + id + ' 的秤失联', 'Scale of position ' + id + ' lost');
      } else if (p.scale && p.scale.fault === 'frozen') {
        b('bad', '⚠ 工位 ' + id + ' 仪表冻结（心跳停止）', 'Position ' + id + ': indicator frozen');
      } else if (p.scale && p.scale.fault) {
        b('bad', '⚠ 工位 ' + id + ' 仪表故障 ' + p.scale.fault.replace('fault', '').trim(),
          'Position ' + id + ': indicator ' + p.scale.fault);
      }
    }
    document.getElementById('banners').replaceChildren(...out);
  }

  function shown() {
    return only ? st.order.filter((id) => id === only) : st.order;
  }

  function verdict(p) {
    const d = p.last_decision;
    if (!d) {
      if (p.state === 'checking' || p.state === 'scanned') {
        return el('div', 'verdict pending', el('p', 'big', '⟳ 检查中', en('checking')),
          el('div', 'code', p.last_scan || ''));
      }
      return null;
    }
    const code = d.cylinder ? d.cylinder.code : d.raw;
    if (d.decision === 'error') {
      return el('div', 'verdict error', el('p', 'big', '⚠ 无法判定，保持锁定', en('No decision: the scale stays locked')),
        el('div', 'code', code || ''), el('div', 'note', d.error || ''),
        el('ul', 'actions', action('supervisor')));
    }
    const allow = d.decision === 'allow';
    const box = el('div', 'verdict ' + (allow ? 'allow' : 'block'),
      el('p', 'big', allow ? '✔ 允许充装' : '✖ 禁止充装', en(allow ? 'Fill allowed' : 'Do not fill')),
      el('div', 'code', code || '', ' ', d.offline ? el('span', 'tag', '离线判定 offline') : null));
    if (!allow) {
      const reasons = el('ul', 'reasons');
      const steps = new Set();
      for (const r of d.reasons || []) {
        const known = REASONS[r.code];
        const detail = (r.message || '').split(': ').slice(1).join(': ');
        reasons.append(el('li', null, known ? known[0] : r.code, en(known ? known[1] : r.message),
          detail ? el('span', 'detail', detail) : null));
        for (const a of known ? known[2] : ['aside', 'supervisor']) steps.add(a);
      }
      if (d.flagged_for_scrap) steps.add('scrap');
      const actions = el('ul', 'actions');
      for (const a of steps) actions.append(action(a));
      box.append(reasons, actions);
    }
    return box;
  }
  function action(key) {
    return el('li', null, '➜ ' + ACTIONS[key][0], en(ACTIONS[key][1]));
  }

  function fillPart(p) {
    if (p.fill) {
      const f = p.fill;
      const gross = typeof p.scale.gross_kg === 'number' ? p.scale.gross_kg : f.gross_before_kg;
      const net = gross - f.tare_kg;
      const bar = el('div');
      bar.style.width = Math.max(0, Math.min(100, (net / f.target_kg) * 100)).toFixed(1) + '%';
      const elapsed = el('span', 'elapsed', clock(Date.now() - Date.parse(f.started_at)));
      elapsed.dataset.since = f.started_at;
      return el('div', 'filling',
        el('div', 'progress', bar),
        el('div', 'fillnums', el('span', 'net', '净重 ' + kg(net) + ' / ' + kg(f.target_kg) + ' kg'),
          elapsed),
        el('div', 'en', 'net filled against the target, and the time'));
    }
    if (p.last_fill) {
      const r = p.last_fill;
      const res = RESULTS[r.result] || [r.result, r.result, 'bad'];
      const up = UPLOADS[p.upload] || null;
      const box = el('div', 'result',
        el('span', res[2], res[0] + ' ', el('span', 'en inline', res[1])),
        ' · 净重 ' + kg(r.net_kg) + ' kg',
        up ? el('div', 'upload', up[0] + ' ', el('span', 'en inline', up[1])) : null);
      if (r.result === 'overfill') box.append(el('ul', 'actions', action('decant')));
      return box;
    }
    return null;
  }

  function tile(p) {
    const s = STATES[p.state] || ['•', p.state, p.state];
    const scale = p.scale || {};
    const scaleText = scale.connected === false ? ['✖ 秤失联', 'scale lost']
      : scale.fault ? ['⚠ 仪表故障', 'indicator fault']
        : scale.stable ? ['✔ 稳定', 'stable'] : ['～ 未稳定', 'settling'];
    const t = el('section', 'tile' + (p.alarm ? ' alarm' : ''),
      el('div', 'head',
        only ? el('span', 'pos', '工位 ' + p.id) : el('a', 'pos', '工位 ' + p.id),
        el('span', 'who', '操作员 ', p.operator_id || '—', el('span', 'en inline', ' operator')),
        el('span', 'state', s[0] + ' ' + s[1] + ' ', el('span', 'en inline', s[2]))),
      el('div', 'head',
        el('span', 'weight', kg(scale.gross_kg), el('small', null, ' kg')),
        el('span', 'scale', scaleText[0] + ' ', el('span', 'en inline', scaleText[1]))),
      verdict(p), fillPart(p),
      p.note ? el('div', 'note', '⚠ ', p.note) : null);
    t.id = 'position-' + p.id;
    t.dataset.state = p.state;
    t.dataset.alarm = p.alarm || '';
    const link = t.querySelector('a.pos');
    if (link) link.href = '/p/' + encodeURIComponent(p.id);
    if (p.alarm) {
      const ack = el('button', 'ack', '✔ 确认报警 ', el('span', 'en inline', 'Acknowledge'));
      ack.type = 'button';
      ack.addEventListener('click', () => acknowledge(p.id));
      t.append(ack);
    }
    return t;
  }

  function draw() {
    document.getElementById('station').textContent = st.station ? '充装站 ' + st.station : '充装站';
    const ids = shown();
    const tiles = ids.map((id) => tile(st.positions[id]));
    if (only && ids.length === 0 && st.station) {
      tiles.push(el('p', 'banner bad', '本站没有工位 ' + only + ' ', en('No position ' + only + ' here')));
    }
    document.getElementById('positions').replaceChildren(...tiles);
    banners();
    alarm(ids.some((id) => st.positions[id].alarm));
  }

  // -- the alarm ------------------------------------------------------------------------
  let audio = null;
  let beeping = null;
  function beep() {
    if (!audio || audio.state !== 'running') return;
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.type = 'square';
    o.frequency.value = 880;
    g.gain.value = 0.25;
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.35);
    probe.beeps++;
  }
  function alarm(on) {
    probe.alarm = on;
    document.body.dataset.alarm = on ? 'on' : 'off';
    if (!on) {
      if (beeping) clearInterval(beeping);
      beeping = null;
      document.getElementById('sound').hidden = true;
      return;
    }
    if (!audio) {
      try { audio = new AudioContext(); } catch (err) { audio = null; }
    }
    if (audio && audio.state === 'suspended') audio.resume().catch(() => {});
    document.getElementById('sound').hidden = !audio || audio.state === 'running';
    if (!beeping) {
      beep();
      beeping = setInterval(beep, 700);
    }
  }
  document.getElementById('sound-on').addEventListener('click', () => {
    if (audio) audio.resume().then(() => { document.getElementById('sound').hidden = true; });
  });

  function acknowledge(id) {
    fetch('/p/' + encodeURIComponent(id) + '/ack', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
    }).catch(() => {});
  }

  // -- the stream -----------------------------------------------------------------------
  let live = false;
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  }
  const source = new EventSource('/events');
  source.onopen = () => {
    live = true;
    document.getElementById('link').className = 'link live';
    document.getElementById('link').replaceChildren('● 实时 ', el('span', 'en inline', 'live'));
    schedule();
  };
  source.onerror = () => {
    live = false;
    document.getElementById('link').className = 'link wait';
    document.getElementById('link').replaceChildren('⚠ 重连中 ', el('span', 'en inline', 'reconnecting'));
    schedule();
  };
  source.onmessage = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (err) { return; }
    probe.events++;
    apply(e);
    const at = e.at ? Date.parse(e.at) : NaN;
    requestAnimationFrame(() => {
      if (!Number.isNaN(at)) probe.latencies.push(Date.now() - at);
    });
    schedule();
  };

  // The clock and a running fill's time: drawn each second, nothing asked of the station.
  setInterval(() => {
    document.getElementById('clock').textContent = new Date().toLocaleTimeString('zh-CN', { hour12: false });
    for (const e of document.querySelectorAll('.elapsed')) {
      e.textContent = clock(Date.now() - Date.parse(e.dataset.since));
    }
  }, 1000);
})();
