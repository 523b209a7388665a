# Helpers shared by every folder: warnings, library targets, doctest files.

function(pingma_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wold-style-cast)
  if(PINGMA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# pingma_library(NAME SOURCES...) -> target pingma_NAME, alias pingma::NAME,
# public headers under NAME/include.
function(pingma_library name)
  add_library(pingma_${name} STATIC ${ARGN})
  add_library(pingma::${name} ALIAS pingma_${name})
  target_include_directories(pingma_${name} PUBLIC
                             "${CMAKE_CURRENT_SOURCE_DIR}/include")
  target_include_directories(pingma_${name} PRIVATE
                             "${CMAKE_CURRENT_SOURCE_DIR}/src")
  pingma_warnings(pingma_${name})
endfunction()

# pingma_test(FILE LIBS...): one doctest file is one ctest test.
function(pingma_test file)
  get_filename_component(name "${file}" NAME_WE)
  add_executable(${name} "${file}")
  target_link_libraries(${name} PRIVATE pingma_doctest_main ${ARGN})
  pingma_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
endfunction()
