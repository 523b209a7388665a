// The fixed JSON answer of the benchmark baselines: about the size of a fill-check
// answer, so that the baselines and the registry send the same bytes per request.
#pragma once

namespace pingma::bench {

inline constexpr const char* kFixedAnswer =
    R"({"check_id":"chk_000000000000000000000000","decision":"allow","reasons":[],)"
    R"("cylinder":{"code":"BM00000000","model":"YSP35.5","owner_company_id":"CO-A",)"
    R"("next_inspection_due":"2027-01-31","state":"active"},)"
    R"("fill":{"tare_kg":16.4,"min_kg":14.1,"max_kg":14.9,"target_kg":14.5},)"
    R"("flagged_for_scrap":false})";

}  // namespace pingma::bench
