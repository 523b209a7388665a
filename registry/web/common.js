// What the courier's page and the console share: DOM helpers that only ever put
// text into the page (never HTML), and the one way to call the registry's API.
// Loaded before each page's own script, as `pingma`.
"use strict";

window.pingma = (function () {
  // An element with attributes ("class", "text" for its text, others as given) and
  // children (nodes, or strings as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }
  // The English beneath a Chinese text.
  function en(text) {
    return el("span", { lang: "en", class: "en", text: text });
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // A call that failed: the HTTP status (0 when there was no answer at all), the
  // registry's error code and message, and the decoded body when there was one.
  class ApiError extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body === undefined ? null : body;
    }
  }

  // One call with a bearer token; resolves to the Response of a 2xx, rejects with
  // an ApiError. options: {json} or {raw, contentType} as the body.
  async function call(method, path, token, options) {
    options = options || {};
    const headers = { Authorization: "Bearer " + token };
    let body;
    if (options.raw !== undefined) {
      body = options.raw;
      headers["Content-Type"] = options.contentType || "application/octet-stream";
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, { method: method, headers: headers, body: body, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "NETWORK", String(e && e.message ? e.message : e));
    }
    if (!response.ok) {
      const text = await response.text().catch(() => "");
      const data = parse(text);
      const err = data && data.error ? data.error : {};
      throw new ApiError(response.status, err.code || "HTTP_" + response.status,
        err.message || text.slice(0, 300) || response.statusText, data);
    }
    return response;
  }

  // The decoded JSON body of a response (null when empty or not JSON).
  async function json(response) {
    return parse(await response.text().catch(() => ""));
  }

  function parse(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch (e) {
      return null;
    }
  }

  return { el: el, en: en, clear: clear, ApiError: ApiError, call: call, json: json };
})();
