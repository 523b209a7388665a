// The courier's page (/courier/) and the regulator's console (/console/), served
// as static files, and the server-side label reader behind the courier's camera.
//
// The files live in registry/web/ and are compiled into the binary (cmake/embed_files.cmake
// makes web_assets.cpp at build time), so a running registry serves exactly the
// pages it was built with and reads nothing from disk. Paths are looked up as
// received, segment by segment, in that fixed table: "..", percent-encoded dots or
// slashes and anything else that is not a file's own name are simply not found.
//
// The console's map draws no tiles unless the site names its own tile server
// (serve --map-tiles): then /console/map.json says where, and the console's pages
// let images come from that origin, and from nowhere else.
#include <algorithm>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cases/pages.h"
#include "cases/queries.h"
#include "pingma/scanner/image.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {

// Defined in the generated web_assets.cpp (cmake/embed_files.cmake).
std::size_t WebAssetCount();
std::string_view WebAssetPath(std::size_t i);
std::string_view WebAssetBytes(std::size_t i);
std::string_view WebAssetTag(std::size_t i);
std::string_view WebAssetType(std::size_t i);

namespace {

// `tiles_origin`: the one more place images may come from (the console's tiles).
std::string ContentSecurityPolicy(std::string_view tiles_origin) {
  return fmt::format(
      "default-src 'self'; img-src 'self' data: blob:{}{}; object-src 'none'; base-uri 'none'; "
      "form-action 'self'; frame-ancestors 'none'",
      tiles_origin.empty() ? "" : " ", tiles_origin);
}

void AddSecurityHeaders(Reply* r, std::string_view tiles_origin = {}) {
  r->headers.emplace_back("Content-Security-Policy", ContentSecurityPolicy(tiles_origin));
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("X-Frame-Options", "DENY");
}

Reply WebNotFound(const Request& request) {
  Reply r;
  r.status = 404;
  r.raw_content_type = "text/html; charset=utf-8";
  if (request.method != "HEAD") {
    r.raw_body =
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<title>没有这个页面</title></head><body><h1>没有这个页面</h1>"
        "<p lang=\"en\">No such page.</p><p><a href=\"/courier/\">送气工页面 Courier</a> · "
        "<a href=\"/console/\">监管平台 Console</a></p></body></html>\n";
  }
  r.headers.emplace_back("Cache-Control", "no-cache");
  AddSecurityHeaders(&r);
  return r;
}

// The asset a path names, or npos. `app` is "console" or "courier"; `name` the
// one segment after it, exactly as received ("" is the index).
std::size_t FindAsset(std::string_view app, std::string_view name) {
  if (name.empty()) name = "index.html";
  const std::string own = fmt::format("{}/{}", app, name);
  for (std::size_t i = 0; i < WebAssetCount(); ++i) {
    if (WebAssetPath(i) == own) return i;
  }
  // The shared style sheet, reachable from both pages' folders.
  for (std::size_t i = 0; i < WebAssetCount(); ++i) {
    if (WebAssetPath(i).find('/') == std::string_view::npos && WebAssetPath(i) == name) return i;
  }
  return static_cast<std::size_t>(-1);
}

// ---- The label reader ------------------------------------------------------------

// The media type without parameters, lower-cased: "image/png".
std::string MediaType(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t')) {
    content_type.remove_prefix(1);
  }
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t')) {
    content_type.remove_suffix(1);
  }
  std::string out(content_type);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Reply ScanError(int status, std::string_view code, std::string_view zh, const std::string& en) {
  Reply r;
  r.status = status;
  r.body = {{"error", {{"code", code}, {"message", fmt::format("{} / {}", zh, en)}}}};
  return r;
}

// What one symbol says, when it is a cylinder's scan.
struct ReadScan {
  DecodedSymbol symbol;
  ScanKey key;
};

bool IsUrlChar(char c) {
  // Printable ASCII but for what would end a CSP source or a header, or be quoted.
  return c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '`' && c != '\\' && c != ';' &&
         c != ',' && c != '<' && c != '>' && c != '#' && c != '^' && c != '|';
}

}  // namespace

Result<MapTiles> ParseMapTiles(std::string_view url_template, std::string_view datum) {
  MapTiles tiles;
  if (datum != "wgs84" && datum != "gcj02") {
    return Status::Invalid(
        fmt::format("--map-tiles-datum must be wgs84 or gcj02, not '{}'", datum));
  }
  tiles.datum = std::string(datum);
  if (url_template.empty()) {
    if (datum != "wgs84") {
      return Status::Invalid(
          "--map-tiles-datum gcj02 needs --map-tiles: without tiles the map "
          "draws the coordinates as stored, in WGS-84");
    }
    return tiles;
  }
  const auto bad = [&](std::string_view why) {
    return Status::Invalid(fmt::format("--map-tiles '{}' {}", url_template, why));
  };
  std::string_view scheme;
  for (std::string_view s : {"https://", "http://"}) {
    if (url_template.size() > s.size() && url_template.substr(0, s.size()) == s) scheme = s;
  }
  if (scheme.empty()) return bad("must be an http:// or https:// URL");
  for (char c : url_template) {
    if (!IsUrlChar(c)) return bad("holds a space, quote, comma, semicolon or other such character");
  }
  const std::string_view rest = url_template.substr(scheme.size());
  const std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.empty() || authority.find_first_of("@{}?") != std::string_view::npos) {
    return bad("must name a host (no user, no placeholder) before its path");
  }
  if (authority.size() == rest.size()) return bad("has no path with {z}, {x} and {y}");
  std::string placeholders;
  for (std::size_t i = 0; i < url_template.size(); ++i) {
    if (url_template[i] != '{' && url_template[i] != '}') continue;
    const std::string_view p = url_template.substr(i, 3);
    if (url_template[i] == '}' || (p != "{z}" && p != "{x}" && p != "{y}")) {
      return bad("may hold no braces but {z}, {x} and {y}");
    }
    placeholders += p[1];
    i += 2;
  }
  std::string sorted = placeholders;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != "xyz") return bad("must hold each of {z}, {x} and {y} once");
  tiles.url_template = std::string(url_template);
  tiles.origin = std::string(scheme) + std::string(authority);
  for (char& c : tiles.origin) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return tiles;
}

void Pages::Handle(const Request& request, const std::vector<std::string_view>& parts,
                   Store::Done done) {
  if (request.method != "GET" && request.method != "HEAD") {
    const std::size_t q = request.target.find('?');
    Reply r = MethodNotAllowed(request.method, std::string_view(request.target).substr(0, q),
                               {"GET", "HEAD"});
    AddSecurityHeaders(&r);
    return done(std::move(r));
  }
  const std::string_view app = parts[0];
  // The console's pages may show the site's tiles; nothing else may.
  const std::string_view tiles_origin =
      app == "console" ? std::string_view(settings_.map_tiles_origin) : std::string_view();
  if (parts.size() == 1) {
    // "/console" → "/console/", so that the pages' relative links resolve.
    Reply r;
    r.status = 301;
    r.raw_content_type = "text/plain; charset=utf-8";
    const std::size_t q = request.target.find('?');
    const std::string location =
        fmt::format("/{}/{}", app, q == std::string::npos ? "" : request.target.substr(q));
    if (request.method != "HEAD") r.raw_body = "Moved to " + location + "\n";
    r.headers.emplace_back("Location", location);
    AddSecurityHeaders(&r, tiles_origin);
    return done(std::move(r));
  }
  if (app == "console" && parts.size() == 2 && parts[1] == "map.json") {
    Reply r;
    r.status = 200;
    r.raw_content_type = "application/json; charset=utf-8";
    const json map = {
        {"tiles", settings_.map_tiles.empty() ? json(nullptr) : json(settings_.map_tiles)},
        {"datum", settings_.map_tiles_datum}};
    if (request.method == "GET") r.raw_body = map.dump() + "\n";
    r.headers.emplace_back("Cache-Control", "no-cache");
    AddSecurityHeaders(&r, tiles_origin);
    return done(std::move(r));
  }
  const std::size_t i = parts.size() == 2 ? FindAsset(app, parts[1]) : static_cast<std::size_t>(-1);
  if (i == static_cast<std::size_t>(-1)) return done(WebNotFound(request));
  Reply r;
  r.status = 200;
  r.raw_content_type = std::string(WebAssetType(i));
  // HEAD: the headers alone (the HTTP layer sends whatever body it is given).
  if (request.method == "GET") r.raw_body = std::string(WebAssetBytes(i));
  // Revalidated on every load, so that a new build's pages are seen at once.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", std::string(WebAssetTag(i)));
  AddSecurityHeaders(&r, tiles_origin);
  done(std::move(r));
}

void Pages::PostScanImage(const Call& call, Store::Done done) {
  const Request& request = *call.request;
  const std::string type = MediaType(request.content_type);
  if (type != "image/jpeg" && type != "image/png" && type != "image/jpg") {
    return done(ScanError(
        415, "UNSUPPORTED_MEDIA_TYPE", "只接受 JPEG 或 PNG 照片",
        fmt::format("send the photo's bytes as Content-Type image/jpeg or image/png, not '{}'",
                    type.empty() ? std::string("(none)") : type)));
  }
  if (request.body.empty()) {
    return done(
        ScanError(422, "BAD_IMAGE", "照片为空", "the body is empty: send the photo's bytes"));
  }
  std::int64_t retry_after = 0;
  const std::string who = fmt::format("{}:{}", ToString(call.who.role), call.who.subject);
  if (!photos_per_token_.Take(who, clock_->Now().unix_ms, &retry_after)) {
    Reply r = ScanError(429, "TOO_MANY_REQUESTS", "拍照识别过于频繁，请稍后再试",
                        fmt::format("at most {} photos a minute per token; try again in {} s",
                                    kPhotosPerWindow, retry_after));
    r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return done(std::move(r));
  }
  // Decoded by a PhotoQueue worker, never on an HTTP thread; the photo is moved,
  // not copied. `done` stays here too, for the refusal when the queue is full.
  std::function<void()> job = [this, photo = std::move(call.request->body), done]() {
    ReadPhoto(photo, done);
  };
  if (!photo_queue_.TrySubmit(job)) {
    Reply r = ScanError(503, "UNAVAILABLE", "识别繁忙，请稍后重试",
                        fmt::format("{} photo(s) are waiting to be read; send it again in {} s",
                                    kPhotosWaiting, kPhotoRetryAfterS));
    r.headers.emplace_back("Retry-After", std::to_string(kPhotoRetryAfterS));
    return done(std::move(r));
  }
}

size_t Pages::PhotoWorkers() {
  return std::max(1u, std::thread::hardware_concurrency() / 4);
}

void Pages::ReadPhoto(const std::string& photo, Store::Done done) {
  auto scan = DecodeImage(photo);
  if (!scan.ok()) {
    if (scan.status().code() == StatusCode::kTooLarge) {
      return done(ScanError(413, "TOO_LARGE", "照片过大", scan.status().message()));
    }
    // Corrupt, truncated or not an image at all: the sender's fault, never ours.
    return done(ScanError(422, "BAD_IMAGE", "无法读取照片",
                          "the photo cannot be read as a PNG or JPEG: " + scan.status().message()));
  }
  if (scan->symbols.empty()) {
    return done(ScanError(
        422, "NO_CODE", "照片中未找到二维码，请靠近标签、对准并保持稳定后重拍",
        fmt::format("no QR code or barcode was found in the photo ({} {}x{}); take it again "
                    "closer to the label, in focus and in good light",
                    scan->format, scan->width, scan->height)));
  }
  std::vector<ReadScan> codes;
  std::vector<std::string> other;
  for (const DecodedSymbol& symbol : scan->symbols) {
    auto key = ParseScan(symbol.text);
    if (!key.ok()) {
      other.push_back(symbol.text);
      continue;
    }
    const bool seen =
        std::any_of(codes.begin(), codes.end(), [&](const ReadScan& c) { return c.key == *key; });
    if (!seen) codes.push_back({symbol, std::move(*key)});
  }
  if (codes.empty()) {
    Reply r = ScanError(422, "NOT_A_CYLINDER_CODE", "照片中的码不是气瓶码",
                        fmt::format("the photo's code reads '{}', which is not a cylinder code",
                                    other.front().substr(0, 200)));
    r.body["scan"] = other.front();
    return done(std::move(r));
  }
  if (codes.size() > 1) {
    std::string list;
    for (const ReadScan& c : codes) list += (list.empty() ? "" : ", ") + c.key.text;
    Reply r = ScanError(422, "SEVERAL_CODES", "照片中有多个不同的气瓶码，请只拍一个标签",
                        fmt::format("the photo shows {} different cylinder codes ({}); take it "
                                    "again with one label only",
                                    codes.size(), list));
    r.body["codes"] = json::array();
    for (const ReadScan& c : codes) r.body["codes"].push_back(c.key.text);
    return done(std::move(r));
  }
  const ReadScan& found = codes.front();
  // A plain code is the code; a tag's key (GRAI, EPC, UID) is looked up among the
  // carriers, and is null when no cylinder carries it.
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    std::string key_text;
    auto code = ResolveKey(conn, found.key, &key_text, /*trust_codes=*/true);
    if (!code.ok()) return ErrorReply(code.status());
    Reply r;
    r.body = {
        {"code", *code ? json(**code) : json(nullptr)},
        {"scan", found.symbol.text},
        {"format", found.symbol.symbology},
        {"key", {{"kind", ToString(found.key.kind)}, {"text", found.key.text}}},
        {"image", {{"format", scan->format}, {"width", scan->width}, {"height", scan->height}}}};
    return r;
  });
}

}  // namespace pingma::registry
