// The distance between two positions on the Earth, for "how far is the vehicle".
//
// A pure function, safe from any thread.
#pragma once

namespace pingma::registry::geo {

/// The Earth's mean radius (IUGG, (2a + b) / 3 of WGS-84), metres.
inline constexpr double kEarthRadiusMetres = 6'371'008.8;

/// The great-circle distance in metres between two WGS-84 positions given in
/// degrees, by the haversine formula on a sphere of kEarthRadiusMetres.
///
/// Error against the geodesic on the WGS-84 ellipsoid (as GeographicLib gives it):
/// under 0.5 % between points in China (18 to 54 degrees north: at most 0.47 %,
/// for north-south steps in the south); at most 0.56 % anywhere, for north-south
/// distances near the equator, where the sphere is rounder than the ellipsoid's
/// meridian. Beijing to Shanghai is 1,067.3 km here, 1,065.8 km on the ellipsoid
/// (+0.14 %). The haversine form keeps its precision for points a metre apart and
/// for antipodal ones. NaN in, NaN out.
double DistanceMetres(double lat1, double lon1, double lat2, double lon2);

}  // namespace pingma::registry::geo
