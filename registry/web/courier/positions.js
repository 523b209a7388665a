// The courier's phone as its vehicle's position source (定位上报, DOMAIN.md "Where
// deliveries go"): while the courier is signed in, every fix of
// navigator.geolocation.watchPosition becomes a position of the vehicle on the
// page, queued in localStorage (the newest 5,000; it survives a reload and a
// dead network) and sent to POST /v1/positions in batches of up to 500, every
// 30 s and at once when the browser comes back online. A batch the registry
// refuses (422) is said and dropped, never retried; a 401 or 403 stops the
// sending and says why. Signing out stops the watch; nothing is sent then.
// Loaded before courier.js, as `pingmaPositions`.
"use strict";

window.pingmaPositions = (function () {
  const QUEUE_KEY = "pingma.courier.positions";
  const MAX_QUEUED = 5000;
  const BATCH = 500;
  const SEND_EVERY_MS = 30000;
  // A vehicle's id as the registry names it (a plate is not one).
  const VEHICLE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

  const { el, en, clear, ApiError } = window.pingma;
  const $ = (id) => document.getElementById(id);

  let options = null; // {token(), vehicle(), newEventId(), onUnauthorized(error)}
  let watchId = null;
  let timer = null;
  let sending = false;
  let state = "off"; // off, locating, sharing, offline, no_vehicle, denied, unsupported, insecure, stopped
  let stopped = null; // [zh, en]: why sending stopped, until the courier acts
  let sendError = null; // [zh, en]: the last round's, until one goes through
  let fixError = null; // [zh, en]: the last fix's, until the next fix
  let refused = null; // [zh, en]: the last batch refused (422), until signed out
  let lastSent = null; // Date

  // ---- the queue -------------------------------------------------------------------

  function queue() {
    try {
      const q = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
      return Array.isArray(q) ? q : [];
    } catch (e) {
      return [];
    }
  }

  function save(q) {
    if (q.length > MAX_QUEUED) q = q.slice(q.length - MAX_QUEUED);
    for (;;) {
      try {
        if (q.length) localStorage.setItem(QUEUE_KEY, JSON.stringify(q));
        else localStorage.removeItem(QUEUE_KEY);
        return;
      } catch (e) {
        // The storage is full: the oldest half goes, the newest are kept.
        if (!q.length) return;
        q = q.slice(Math.ceil(q.length / 2));
      }
    }
  }

  function drop(batch) {
    const ids = new Set(batch.map((p) => p.event_id));
    save(queue().filter((p) => !ids.has(p.event_id)));
  }

  // ---- fixes -----------------------------------------------------------------------

  function position(fix, vehicle) {
    const c = fix.coords;
    const p = {
      event_id: options.newEventId(),
      vehicle: vehicle,
      at: new Date(fix.timestamp || Date.now()).toISOString(),
      lat: Math.round(c.latitude * 1e7) / 1e7,
      lon: Math.round(c.longitude * 1e7) / 1e7,
    };
    if (Number.isFinite(c.accuracy) && c.accuracy >= 0) p.accuracy_m = Math.round(c.accuracy * 10) / 10;
    if (c.speed !== null && Number.isFinite(c.speed) && c.speed >= 0) p.speed_kmh = Math.round(c.speed * 36) / 10;
    if (c.heading !== null && Number.isFinite(c.heading) && c.heading >= 0) p.heading = Math.round(c.heading) % 360;
    return p;
  }

  function onFix(fix) {
    if (!options || !options.token()) return;
    const vehicle = String(options.vehicle() || "").trim();
    if (!VEHICLE_ID.test(vehicle)) {
      state = "no_vehicle";
      show();
      return;
    }
    fixError = null;
    const q = queue();
    q.push(position(fix, vehicle));
    save(q);
    state = navigator.onLine ? "sharing" : "offline";
    show();
    if (q.length >= BATCH) flush();
  }

  function onFixError(error) {
    if (error.code === 1) {
      // PERMISSION_DENIED: the browser will not ask again by itself.
      unwatch();
      state = "denied";
    } else if (error.code === 3) {
      fixError = ["定位超时，仍在继续尝试。", "No position yet (timed out); still trying."];
    } else {
      fixError = ["暂时无法获得位置，仍在继续尝试。",
        "The position is unavailable for now" + (error.message ? " (" + error.message + ")" : "") + "; still trying."];
    }
    show();
  }

  function watch() {
    if (watchId !== null) return;
    if (!("geolocation" in navigator)) {
      state = "unsupported";
    } else if (!window.isSecureContext) {
      state = "insecure";
    } else {
      state = "locating";
      watchId = navigator.geolocation.watchPosition(onFix, onFixError,
        { enableHighAccuracy: true, maximumAge: 0, timeout: 60000 });
    }
  }

  function unwatch() {
    if (watchId !== null && navigator.geolocation) navigator.geolocation.clearWatch(watchId);
    watchId = null;
  }

  // ---- sending ---------------------------------------------------------------------

  async function flush() {
    if (!options || sending || stopped || !options.token()) return;
    if (!navigator.onLine) {
      if (state === "sharing") state = "offline";
      show();
      return;
    }
    sending = true;
    try {
      for (;;) {
        const q = queue();
        if (!q.length || !options) break;
        // One vehicle a batch, oldest first.
        const vehicle = q[0].vehicle;
        const batch = [];
        for (const p of q) {
          if (p.vehicle !== vehicle || batch.length >= BATCH) break;
          batch.push(p);
        }
        try {
          await window.pingma.call("POST", "/v1/positions", options.token(), { json: { positions: batch } });
          drop(batch);
          lastSent = new Date();
          sendError = null;
          if (state === "offline") state = "sharing";
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          if (e.status === 422) {
            // Refused as it is: sent again it would be refused again.
            drop(batch);
            refused = ["登记系统拒收了 " + batch.length + " 条位置，已丢弃：" + e.message,
              batch.length + (batch.length === 1 ? " position" : " positions") + " refused by the registry and dropped: " + e.message];
            continue;
          }
          if (e.status === 401 || e.status === 403) {
            stopped = e.status === 401
              ? ["令牌无效或已失效，已停止上报位置。", "The token is not valid: positions are no longer sent. " + e.message]
              : ["此令牌无权上报该车辆的位置，已停止上报：" + e.message,
                "This token may not send this vehicle's positions; sending stopped: " + e.message];
            unwatch();
            state = "stopped";
            if (e.status === 401 && options.onUnauthorized) options.onUnauthorized(e);
            break;
          }
          // No answer, busy, or the registry could not finish: the next round sends it.
          sendError = e.status === 0
            ? ["网络不通，位置暂存在本机，稍后自动发送。", "No connection: positions are kept on this phone and sent later."]
            : ["发送位置未成功（" + e.status + " " + e.code + "），稍后重试。", "Sending positions failed (" + e.status + "): " + e.message + "; will retry."];
          break;
        }
      }
    } finally {
      sending = false;
      show();
    }
  }

  // ---- the status line -------------------------------------------------------------

  const STATES = {
    locating: ["◌", "正在定位…", "Finding the position…"],
    sharing: ["●", "定位上报中", "Sharing position"],
    offline: ["◌", "网络断开，位置暂存本机", "Offline: positions kept on this phone"],
    no_vehicle: ["!", "请先填写车辆编号（不是车牌），才能上报位置", "Enter the vehicle's id (not its plate) to share its position"],
    denied: ["✗", "未获得定位权限，无法上报车辆位置。请在浏览器的网站设置中允许本页使用位置信息，然后重新登录。",
      "Location permission was refused: the vehicle's position cannot be shared. Allow this page to use your location in the browser's site settings, then sign in again."],
    unsupported: ["✗", "此浏览器无法提供位置，不能上报。", "This browser gives no position: nothing can be shared."],
    insecure: ["✗", "定位需要 HTTPS 连接，本页无法上报位置。", "Positions need an HTTPS connection: this page cannot share them."],
    stopped: ["✗", "已停止上报位置", "Position sharing stopped"],
  };

  function show() {
    const box = $("position-status");
    if (!box) return;
    if (state === "off") {
      box.hidden = true;
      return;
    }
    const waiting = queue().length;
    const words = STATES[state] || ["·", state, state];
    box.hidden = false;
    box.setAttribute("data-state", state);
    box.setAttribute("data-waiting", String(waiting));
    box.className = "position-status " + (state === "sharing" ? "ok" : ["locating", "offline", "no_vehicle"].indexOf(state) >= 0 ? "unknown" : "bad");
    const line = $("position-state");
    clear(line);
    line.appendChild(el("span", { class: "mark", "aria-hidden": "true", text: words[0] + " " }));
    line.appendChild(el("strong", { text: words[1] }));
    line.appendChild(el("span", { lang: "en", class: "inline-en", text: " " + words[2] }));
    const count = $("position-waiting");
    clear(count);
    count.appendChild(document.createTextNode(waiting + " 条待发送 "));
    count.appendChild(el("span", { lang: "en", class: "inline-en", text: waiting + " waiting" }));
    if (lastSent) {
      const t = lastSent.toLocaleTimeString("zh-CN", { hour12: false });
      count.appendChild(document.createTextNode(" · 上次发送 " + t + " "));
      count.appendChild(el("span", { lang: "en", class: "inline-en", text: "last sent " + t }));
    }
    const problem = $("position-error");
    clear(problem);
    const why = stopped || sendError || refused || fixError;
    problem.hidden = !why;
    if (why) {
      problem.appendChild(el("strong", { text: why[0] }));
      problem.appendChild(en(why[1]));
    }
    $("position-discard").hidden = !(stopped && waiting);
  }

  // ---- signed in, signed out -------------------------------------------------------

  function onOnline() {
    if (state === "offline") state = "sharing";
    flush();
  }
  function onOffline() {
    if (state === "sharing") state = "offline";
    show();
  }

  // Signed in: watch and send. options: {token(), vehicle(), newEventId(), onUnauthorized(error)}.
  function start(given) {
    options = given;
    stopped = null;
    sendError = null;
    fixError = null;
    refused = null;
    watch();
    if (!timer) timer = setInterval(flush, SEND_EVERY_MS);
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    show();
    flush();
  }

  // Signed out: no watch, nothing sent; what waits stays queued on the phone.
  function stop() {
    unwatch();
    if (timer) clearInterval(timer);
    timer = null;
    window.removeEventListener("online", onOnline);
    window.removeEventListener("offline", onOffline);
    options = null;
    state = "off";
    stopped = null;
    sendError = null;
    fixError = null;
    refused = null;
    show();
  }

  // The vehicle on the page changed: a refusal for the old one may no longer hold.
  function vehicleChanged() {
    if (!options) return;
    if (stopped) {
      stopped = null;
      sendError = null;
      watch();
    } else if (state === "no_vehicle") {
      state = watchId !== null ? "locating" : state;
    }
    show();
    flush();
  }

  function discard() {
    save([]);
    show();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const b = $("position-discard");
    if (b) b.addEventListener("click", discard);
  });

  return { start: start, stop: stop, vehicleChanged: vehicleChanged, flush: flush };
})();
