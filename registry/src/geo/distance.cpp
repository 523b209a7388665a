#include "geo/distance.h"

#include <cmath>

namespace pingma::registry::geo {

double DistanceMetres(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRadiansPerDegree = 3.14159265358979323846 / 180.0;
  const double phi1 = lat1 * kRadiansPerDegree;
  const double phi2 = lat2 * kRadiansPerDegree;
  const double half_dphi = (lat2 - lat1) * kRadiansPerDegree / 2;
  const double half_dlambda = (lon2 - lon1) * kRadiansPerDegree / 2;
  const double s = std::sin(half_dphi);
  const double t = std::sin(half_dlambda);
  double h = s * s + std::cos(phi1) * std::cos(phi2) * t * t;
  // h can round a hair past 1 for antipodal points, where asin would give NaN.
  if (h > 1) h = 1;
  return 2 * kEarthRadiusMetres * std::asin(std::sqrt(h));
}

}  // namespace pingma::registry::geo
