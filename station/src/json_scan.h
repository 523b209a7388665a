// Cheap looks into JSON text without parsing it: where an object's members and an
// array's elements lie. For text that is parsed in full as well (before anything
// it says is trusted), so that the parse can run on another thread, and so that
// what was received can be stored as it came.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace pingma::station {

/// The members of the object that `text` holds, in order, as (name as written
/// between its quotes, value's text). nullopt when `text` does not hold an
/// object. Malformed text gives nullopt or a wrong answer, never a read out of
/// bounds.
std::optional<std::vector<std::pair<std::string_view, std::string_view>>> ObjectMembers(
    std::string_view text);

/// The texts of the elements of the array that `text` holds, in order; nullopt
/// when `text` does not hold an array. As for ObjectMembers.
std::optional<std::vector<std::string_view>> ArrayElements(std::string_view text);

}  // namespace pingma::station
