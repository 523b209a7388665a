// The courier's page and the regulator's console (static files embedded from
// registry/web/, and the console map's settings, /console/map.json), and the
// server-side label reader they call (POST /v1/scan/image), with its queue of
// photos waiting for a decoder.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cases/photo_queue.h"
#include "cases/use_case.h"
#include "http/rate_limit.h"

namespace pingma::registry {

/// The console map's tiles as a site sets them (serve --map-tiles, --map-tiles-datum).
struct MapTiles {
  std::string url_template;     ///< "https://tiles.example/{z}/{x}/{y}.png"; empty: none
  std::string origin;           ///< "https://tiles.example": what the console's CSP allows
  std::string datum = "wgs84";  ///< "wgs84" or "gcj02"
};

/// Checks a tile URL template and its datum. The template is an http:// or https://
/// URL naming a host (no user, no fragment) with each of {z}, {x} and {y} once and
/// no other braces, of printable ASCII without spaces, quotes, backslashes, commas
/// or semicolons (it goes into a Content-Security-Policy). An empty template is no
/// tiles; "gcj02" without one is refused, as is a datum other than the two.
Result<MapTiles> ParseMapTiles(std::string_view url_template, std::string_view datum);

class Pages final : public UseCase {
 public:
  using UseCase::UseCase;

  /// POST /v1/scan/image: label photos read per token within a minute, photos
  /// waiting for a decoder beside those being decoded, and the seconds a photo
  /// refused for a full queue is told to wait (about one decode of a large one).
  static constexpr size_t kPhotosPerWindow = 30;
  static constexpr std::int64_t kPhotoWindowMs = 60 * 1000;
  static constexpr size_t kPhotosWaiting = 4;
  static constexpr int kPhotoRetryAfterS = 2;
  /// Decoding threads: a quarter of the cores, at least one.
  static size_t PhotoWorkers();

  /// Everything under /console and /courier: the files, and /console/map.json
  /// ({tiles: template or null, datum}) for the console's map.
  void Handle(const Request& request, const std::vector<std::string_view>& parts, Store::Done done);
  void PostScanImage(const Call& call, Store::Done done);

 private:
  /// Decodes a photo and answers (on a PhotoQueue worker).
  void ReadPhoto(const std::string& photo, Store::Done done);

  /// Photos taken per token in the last window.
  SlidingWindowLimit photos_per_token_{kPhotosPerWindow, kPhotoWindowMs};
  /// Last, so that it goes first: its workers use everything above.
  PhotoQueue photo_queue_{PhotoWorkers(), kPhotosWaiting};
};

}  // namespace pingma::registry
