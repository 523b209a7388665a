"""The courier page and the console as the real pingma-registry serves them, and
the label photo reader behind the courier's camera (POST /v1/scan/image).

Files: each with its content type, no-cache, a stable ETag and the security
headers; HEAD; the 301 to the trailing slash; 404 for every other path, however
it is dressed up (.., %2e%2e, encoded slashes, double slashes, the other page's
files, the sources' build script); 405 with Allow for other methods; and in the
files themselves nothing that the Content-Security-Policy would block or that
reaches outside (no inline script or style, no innerHTML, no external URL).

The label reader: a label drawn by pingma-label (PNG), the same as a JPEG from
ImageMagick, a photo with no symbol, a QR that is no cylinder code (qrencode), two
labels in one photo, garbage, a truncated PNG, an empty body, wrong or missing
content types, no token, every role, and a body over 20 MiB: each with its exact
status and error code, and never a 500.

    python3 registry_web_test.py /path/to/pingma-registry /path/to/pingma-label
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import Registry, RegistryCase, take_binary_argument

BINARY = None  # set in __main__
LABEL = None
CONVERT = "/usr/bin/convert"
QRENCODE = shutil.which("qrencode")
SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "registry",
                       "web")

CSP = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
JS = "application/javascript; charset=utf-8"
# Every file served, with the source it must be byte for byte.
FILES = {
    "/console/": ("console/index.html", HTML),
    "/console/index.html": ("console/index.html", HTML),
    "/console/console.js": ("console/console.js", JS),
    "/console/console.css": ("console/console.css", CSS),
    "/console/geo.js": ("console/geo.js", JS),
    "/console/map.js": ("console/map.js", JS),
    "/console/common.css": ("common.css", CSS),
    "/console/common.js": ("common.js", JS),
    "/courier/": ("courier/index.html", HTML),
    "/courier/index.html": ("courier/index.html", HTML),
    "/courier/courier.js": ("courier/courier.js", JS),
    "/courier/courier.css": ("courier/courier.css", CSS),
    "/courier/positions.js": ("courier/positions.js", JS),
    "/courier/common.css": ("common.css", CSS),
    "/courier/common.js": ("common.js", JS),
}


def headers_of(raw):
    """Response headers with lower-cased names."""
    return {k.lower(): v for k, v in raw.items()}


class WebTest(RegistryCase):
    maxDiff = 4000
    TOKENS = {role + "_token": (role, "W-" + role.upper())
              for role in ("admin", "company", "station", "inspector", "courier", "regulator")}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pingma-web-test-")
        super().setUpClass()

    @classmethod
    def world(cls):
        cls.tokens = {role: getattr(cls, role + "_token")
                      for role in ("admin", "company", "station", "inspector", "courier",
                                   "regulator")}
        cls._images()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp, name)

    @classmethod
    def run_tool(cls, *args):
        r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        assert r.returncode == 0, "%r exited %d: %s" % (args, r.returncode, r.stderr)

    @classmethod
    def _images(cls):
        for code in ("WEB0000001", "WEB0000002"):
            cls.run_tool(LABEL, "--code", code, "--model", "YSP35.5", "--owner", "网页测试燃气",
                         "--out", cls.path(code + ".png"))
        label = cls.path("WEB0000001.png")
        # A phone's photo: JPEG, a little grey border around the label.
        cls.run_tool(CONVERT, label, "-bordercolor", "#d0d0d0", "-border", "60", "-quality",
                     "85", cls.path("label.jpg"))
        cls.run_tool(CONVERT, "-size", "640x480", "xc:#e8e8e8", "-fill", "#808080", "-draw",
                     "rectangle 100,100 300,250", cls.path("blank.png"))
        cls.run_tool(CONVERT, label, cls.path("WEB0000002.png"), "+append",
                     cls.path("two.png"))
        cls.run_tool(CONVERT, label, label, "+append", cls.path("twice.png"))
        if QRENCODE:
            cls.run_tool(QRENCODE, "-o", cls.path("text.png"), "-s", "8",
                         "just some text, not a cylinder!")
        with open(label, "rb") as f:
            data = f.read()
        with open(cls.path("truncated.png"), "wb") as f:
            f.write(data[:len(data) // 2])

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def get(self, method, path, **kw):
        conn = self.reg.connection()
        try:
            status, body, headers = conn.request(method, path, **kw)
        finally:
            conn.close()
        return status, body, headers_of(headers)

    def raw_get(self, method, path):
        """(status, body bytes, headers) without decoding."""
        import http.client
        conn = http.client.HTTPConnection(self.reg.host, self.reg.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body, headers_of(dict(resp.getheaders()))
        finally:
            conn.close()

    def scan(self, data, content_type="image/png", token="courier"):
        headers = {"Content-Type": content_type} if content_type is not None else {}
        conn = self.reg.connection(timeout=120)
        try:
            status, body, _ = conn.request(
                "POST", "/v1/scan/image", raw=data if data is not None else b"",
                token=self.tokens[token] if token else None, headers=headers)
        finally:
            conn.close()
        self.assertNotEqual(status // 100, 5, body)
        return status, body

    def assertNotRegex(self, text, regex, msg=None):
        """As unittest's, naming the match instead of printing the whole file."""
        m = re.search(regex, text)
        if m:
            self.fail("%s: %r matches %r" % (msg, text[max(0, m.start() - 40):m.end() + 40],
                                             regex))

    def assertError(self, status, body, want_status, want_code, *parts):
        self.assertEqual(status, want_status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body["error"]["code"], want_code, body)
        for p in parts:
            self.assertIn(p, body["error"]["message"], body)

    # -- the files ---------------------------------------------------------------

    def test_01_files_served_with_types_and_headers(self):
        tags = {}
        for path, (source, ctype) in FILES.items():
            status, body, h = self.raw_get("GET", path)
            self.assertEqual(status, 200, path)
            with open(os.path.join(SOURCES, source), "rb") as f:
                self.assertEqual(body, f.read(), "%s is not %s as built" % (path, source))
            self.assertEqual(h["content-type"], ctype, path)
            self.assertEqual(h["cache-control"], "no-cache", path)
            self.assertEqual(h["content-security-policy"], CSP, path)
            self.assertEqual(h["x-content-type-options"], "nosniff", path)
            self.assertEqual(h["referrer-policy"], "no-referrer", path)
            self.assertRegex(h["etag"], r'^"[0-9a-f]{20}"$', path)
            self.assertEqual(h["etag"][1:-1], hashlib.sha256(body).hexdigest()[:20], path)
            tags.setdefault(source, set()).add(h["etag"])
        # One tag per file, whichever path reached it; different files, different tags.
        self.assertTrue(all(len(t) == 1 for t in tags.values()), tags)
        self.assertEqual(len({next(iter(t)) for t in tags.values()}), len(tags))
        # Stable from one request to the next.
        _, _, again = self.raw_get("GET", "/console/console.js")
        self.assertEqual({again["etag"]}, tags["console/console.js"])

    def test_02_head(self):
        for path, (_, ctype) in FILES.items():
            status, body, h = self.raw_get("HEAD", path)
            self.assertEqual(status, 200, path)
            self.assertEqual(body, b"", path)
            self.assertEqual(h["content-type"], ctype, path)
            self.assertIn("etag", h)
            self.assertEqual(h["content-security-policy"], CSP)

    def test_03_pages_keep_to_the_policy(self):
        for source in ("console/index.html", "courier/index.html"):
            with open(os.path.join(SOURCES, source), encoding="utf-8") as f:
                html = f.read()
            self.assertIn('<html lang="zh-CN">', html, source)
            self.assertIn('name="viewport"', html, source)
            # No inline script, style or handler: the CSP would block them.
            for script in re.findall(r"<script\b[^>]*>", html):
                self.assertRegex(script, r'\bsrc="[a-z]+\.js"', source)
            self.assertNotRegex(html, r"<script\b[^>]*>(?!</script>)", source)
            self.assertNotIn("<style", html, source)
            self.assertNotRegex(html, r"\sstyle=", source)
            self.assertNotRegex(html, r"\son[a-z]+=", source)
            # Nothing fetched from elsewhere.
            self.assertNotRegex(html, r'(src|href)="(https?:)?//', source)
        for source in ("console/console.js", "console/geo.js", "console/map.js",
                       "courier/courier.js", "courier/positions.js", "common.js"):
            with open(os.path.join(SOURCES, source), encoding="utf-8") as f:
                js = f.read()
            self.assertNotIn("innerHTML", js, source)
            self.assertNotIn("outerHTML", js, source)
            self.assertNotIn("insertAdjacentHTML", js, source)
            self.assertNotIn("document.write", js, source)
            self.assertNotIn("eval(", js, source)
            # The one URL is SVG's namespace, which names and fetches nothing.
            self.assertNotRegex(js, r"""["'](https?:)?//(?!www\.w3\.org/2000/svg")""", source)
        with open(os.path.join(SOURCES, "courier/index.html"), encoding="utf-8") as f:
            courier = f.read()
        self.assertIn('accept="image/*"', courier)
        self.assertIn('capture="environment"', courier)
        self.assertIn('aria-live="assertive"', courier)

    def test_04_redirect_to_the_slash(self):
        for path, location in (("/console", "/console/"), ("/courier", "/courier/"),
                               ("/courier?from=sms", "/courier/?from=sms")):
            status, _, h = self.raw_get("GET", path)
            self.assertEqual(status, 301, path)
            self.assertEqual(h["location"], location, path)
        status, _, h = self.raw_get("HEAD", "/console")
        self.assertEqual((status, h["location"]), (301, "/console/"))

    def test_05_nothing_else_is_found(self):
        for path in ("/console/nope.js", "/console/../v1/audit/head", "/console/..",
                     "/console/../", "/console/%2e%2e/", "/console/%2E%2E/%2E%2E/etc/passwd",
                     "/courier/..%2fconsole%2findex.html", "/courier/%2e%2e%2fconsole%2f",
                     "/console/console.js/", "/console//console.js", "/console/./console.js",
                     "/console/%63onsole.js", "/console/console.js%00", "/console/courier.js",
                     "/courier/console.css", "/console/embed.cmake", "/console/web/common.css",
                     "/console/console/index.html", "/console/..%5cindex.html",
                     "/console/.%2e/courier/", "/consoles/", "/courier/x/../courier.js",
                     "/courier/%2fetc%2fpasswd", "/console/index.html/..",
                     "/courier/map.json", "/console/map.json/", "/console/x/map.json"):
            status, body, h = self.raw_get("GET", path)
            self.assertEqual(status, 404, path)
            self.assertNotIn(b"use strict", body, path)
            if path.startswith(("/console/", "/courier/")):
                self.assertEqual(h["content-type"], HTML, path)
                self.assertIn("没有这个页面".encode(), body, path)
                self.assertEqual(h["x-content-type-options"], "nosniff", path)

    def test_06a_map_settings_without_tiles(self):
        """/console/map.json: no tiles unless the site names its own; the CSP as ever."""
        status, body, h = self.raw_get("GET", "/console/map.json")
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "application/json; charset=utf-8")
        self.assertEqual(h["cache-control"], "no-cache")
        self.assertEqual(h["content-security-policy"], CSP)
        self.assertEqual(json.loads(body), {"tiles": None, "datum": "wgs84"})
        status, body, h = self.raw_get("HEAD", "/console/map.json")
        self.assertEqual((status, body), (200, b""))

    def test_06b_map_tiles_of_the_site(self):
        """serve --map-tiles: the console learns the template and its datum, and its
        pages (only) let images come from that one origin; bad templates refused."""
        tiles = "https://Tiles.Example.cn:8443/gcj/{z}/{x}/{y}.png?style=7"
        reg = Registry(BINARY)
        try:
            reg.start(extra_args=("--map-tiles", tiles, "--map-tiles-datum", "gcj02"))
            conn = reg.connection()
            try:
                status, body, h = conn.request("GET", "/console/map.json")
                self.assertEqual((status, body), (200, {"tiles": tiles, "datum": "gcj02"}))
                with_tiles = CSP.replace("img-src 'self' data: blob:",
                                         "img-src 'self' data: blob: https://tiles.example.cn:8443")
                for path in ("/console/", "/console/map.js", "/console/map.json"):
                    status, _, h = conn.request("GET", path)
                    self.assertEqual(headers_of(h)["content-security-policy"], with_tiles, path)
                for path in ("/courier/", "/courier/positions.js"):
                    status, _, h = conn.request("GET", path)
                    self.assertEqual(headers_of(h)["content-security-policy"], CSP, path)
            finally:
                conn.close()
            reg.stop()
        finally:
            reg.cleanup()
        for args, said in (
                (("--map-tiles", "https://t.example/{z}/{x}.png"), "each of {z}, {x} and {y}"),
                (("--map-tiles", "https://t.example/{z}/{x}/{y}.png; script-src *"),
                 "semicolon"),
                (("--map-tiles", "ftp://t.example/{z}/{x}/{y}.png"), "http:// or https://"),
                (("--map-tiles-datum", "gcj02"), "--map-tiles"),
                (("--map-tiles", "https://t.example/{z}/{x}/{y}.png", "--map-tiles-datum",
                  "bd09"), "bd09")):
            r = subprocess.run([BINARY, "serve", "--db", os.path.join(self.tmp, "never.db"),
                                "--listen", "127.0.0.1:0"] + list(args),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                               universal_newlines=True)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn(said, r.stderr, args)
            self.assertEqual(r.stdout, "", args)

    def test_06_other_methods(self):
        for method, path in (("POST", "/console/"), ("PUT", "/courier/courier.js"),
                             ("DELETE", "/console/console.css"), ("PATCH", "/courier"),
                             ("OPTIONS", "/console/nope")):
            status, body, h = self.get(method, path, raw=b"x")
            self.assertEqual(status, 405, (method, path))
            self.assertEqual(h["allow"], "GET, HEAD", (method, path))
            self.assertEqual(body["error"]["code"], "METHOD_NOT_ALLOWED")

    # -- the label reader --------------------------------------------------------

    def test_10_png_label(self):
        status, body = self.scan(self.read("WEB0000001.png"))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["code"], "WEB0000001")
        self.assertEqual(body["scan"], "https://pingma.example/c/WEB0000001")
        self.assertEqual(body["format"], "QRCode")
        self.assertEqual(body["key"], {"kind": "code", "text": "WEB0000001"})
        self.assertEqual(body["image"]["format"], "png")

    def test_11_jpeg_photo(self):
        status, body = self.scan(self.read("label.jpg"), "image/jpeg")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["code"], body["format"], body["image"]["format"]),
                         ("WEB0000001", "QRCode", "jpeg"))
        # Parameters and case in the type do not matter.
        status, body = self.scan(self.read("label.jpg"), "IMAGE/JPEG; charset=binary")
        self.assertEqual((status, body["code"]), (200, "WEB0000001"))

    def test_12_every_role_may_read_a_label(self):
        for role in self.tokens:
            status, body = self.scan(self.read("WEB0000002.png"), token=role)
            self.assertEqual((status, body["code"]), (200, "WEB0000002"), role)

    def test_13_nothing_in_the_photo(self):
        status, body = self.scan(self.read("blank.png"))
        self.assertError(status, body, 422, "NO_CODE", "照片中未找到二维码",
                         "no QR code or barcode was found in the photo (png 640x480)")

    def test_14_two_labels_in_one_photo(self):
        status, body = self.scan(self.read("two.png"))
        self.assertError(status, body, 422, "SEVERAL_CODES", "照片中有多个不同的气瓶码",
                         "2 different cylinder codes")
        self.assertEqual(sorted(body["codes"]), ["WEB0000001", "WEB0000002"])
        # The same label twice is one code.
        status, body = self.scan(self.read("twice.png"))
        self.assertEqual((status, body["code"]), (200, "WEB0000001"), body)

    @unittest.skipUnless(QRENCODE, "qrencode is not installed")
    def test_15_a_code_that_is_no_cylinder_code(self):
        status, body = self.scan(self.read("text.png"))
        self.assertError(status, body, 422, "NOT_A_CYLINDER_CODE", "照片中的码不是气瓶码",
                         "'just some text, not a cylinder!'")
        self.assertEqual(body["scan"], "just some text, not a cylinder!")

    def test_16_bad_bytes(self):
        garbage = bytes((i * 7919 + 13) % 256 for i in range(5000))
        for data, ctype, detail in (
                (garbage, "image/jpeg", "the photo cannot be read as a PNG or JPEG"),
                (self.read("truncated.png"), "image/png", "the photo cannot be read"),
                (b"\x89PNG\r\n\x1a\n", "image/png", "the photo cannot be read"),
                (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image/jpeg", "the photo cannot be read"),
                (b"GIF89a" + b"\x00" * 64, "image/png", "the photo cannot be read")):
            status, body = self.scan(data, ctype)
            self.assertError(status, body, 422, "BAD_IMAGE", "无法读取照片", detail)
        status, body = self.scan(b"", "image/png")
        self.assertError(status, body, 422, "BAD_IMAGE",
                         "照片为空 / the body is empty: send the photo's bytes")

    def test_17_wrong_content_type(self):
        png = self.read("WEB0000001.png")
        for ctype, named in (("text/plain", "'text/plain'"), ("application/json", "'application/json'"),
                             ("image/gif", "'image/gif'"), ("", "'(none)'"),
                             ("application/octet-stream", "'application/octet-stream'")):
            status, body = self.scan(png, ctype)
            self.assertError(status, body, 415, "UNSUPPORTED_MEDIA_TYPE",
                             "只接受 JPEG 或 PNG 照片 / send the photo's bytes as Content-Type "
                             "image/jpeg or image/png, not " + named)

    def test_18_no_token(self):
        # Without a token a request gets the public body limit (8 KiB), refused from
        # its Content-Length before the photo is read; a smaller body gets the 401.
        photo = self.read("WEB0000001.png")
        self.assertGreater(len(photo), 8192)
        status, body = self.scan(photo, token=None)
        self.assertError(status, body, 413, "TOO_LARGE", "the limit here is 8192")
        status, body = self.scan(photo[:8192], token=None)
        self.assertError(status, body, 401, "UNAUTHENTICATED", "Authorization: Bearer")
        conn = self.reg.connection()
        try:
            status, body, _ = conn.request("POST", "/v1/scan/image", raw=b"x",
                                           token="pm_not_a_token",
                                           headers={"Content-Type": "image/png"})
        finally:
            conn.close()
        self.assertEqual(status, 401, body)

    def test_19_too_large(self):
        # At the limit the photo reaches the decoder (and is no PNG); a byte more
        # is refused by the router before it is read.
        header = b"\x89PNG\r\n\x1a\n"
        status, body = self.scan(header + b"\x00" * ((20 << 20) - len(header)), "image/png")
        self.assertEqual(status, 422, body)
        self.assertEqual(body["error"]["code"], "BAD_IMAGE", body)
        status, body = self.scan(header + b"\x00" * ((20 << 20) - len(header) + 1), "image/png")
        self.assertError(status, body, 413, "TOO_LARGE", "the limit here is 20971520")

    def test_20_get_is_not_allowed(self):
        status, body, h = self.get("GET", "/v1/scan/image", token=self.tokens["courier"])
        self.assertEqual(status, 405, body)
        self.assertEqual(h["allow"], "POST")


if __name__ == "__main__":
    BINARY = take_binary_argument()
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: python3 %s PINGMA_REGISTRY PINGMA_LABEL [unittest args]\n"
                         % sys.argv[0])
        sys.exit(2)
    LABEL = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
