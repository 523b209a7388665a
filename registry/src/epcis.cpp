// Platform interop (平台对接): the registry's events as a GS1 EPCIS 2.0 JSON-LD
// document.
#include "service.h"

namespace pingma::registry {

void Service::ExportEpcis(const Call&, Store::Done done) {
  done(ErrorReply(Status::Unavailable("not built yet")));
}

}  // namespace pingma::registry
