// The courier's page (/courier/) and the regulator's console (/console/), served
// as static files, and the server-side label reader behind the courier's camera.
#include "service.h"

namespace pingma::registry {

void Service::HandleWeb(const Request&, const std::vector<std::string_view>&, Store::Done done) {
  done(ErrorReply(Status::NotFound("not built yet")));
}

void Service::PostScanImage(const Call&, Store::Done done) {
  done(ErrorReply(Status::Unavailable("not built yet")));
}

}  // namespace pingma::registry
