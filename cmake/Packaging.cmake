# Debian packages (API.md, "Programs"): `./tools/quickstart.sh package` runs CPack
# into build/packages/. Three packages, their dependencies computed from the
# binaries by dpkg-shlibdeps:
#   pingma-registry  /usr/bin/pingma-registry, /etc/pingma/registry.toml, its unit
#   pingma-station   /usr/bin/pingma-station, /etc/pingma/station.toml, its unit
#   pingma-tools     pingma-scan, pingma-label, pingma-scale-sim
# The registry's and the station's maintainer scripts (packaging/*.in) make the
# pingma system user and /var/lib/pingma; the files in /etc/pingma are conffiles.

install(TARGETS pingma-registry RUNTIME DESTINATION bin COMPONENT registry)
install(FILES "${PROJECT_SOURCE_DIR}/registry/etc/registry.toml" DESTINATION /etc/pingma
        COMPONENT registry)
install(FILES "${PROJECT_SOURCE_DIR}/packaging/pingma-registry.service"
        DESTINATION /lib/systemd/system COMPONENT registry)
install(TARGETS pingma-station RUNTIME DESTINATION bin COMPONENT station)
install(FILES "${PROJECT_SOURCE_DIR}/station/etc/station.toml" DESTINATION /etc/pingma
        COMPONENT station)
install(FILES "${PROJECT_SOURCE_DIR}/packaging/pingma-station.service"
        DESTINATION /lib/systemd/system COMPONENT station)
install(FILES "${PROJECT_SOURCE_DIR}/station/profiles/bde-2007.toml"
              "${PROJECT_SOURCE_DIR}/station/profiles/pingma-fill-v1.toml"
        DESTINATION share/pingma/profiles COMPONENT station)
install(TARGETS pingma-scan pingma-label pingma-scale-sim RUNTIME DESTINATION bin
        COMPONENT tools)

# The maintainer scripts and conffiles of a package: PACKAGE, its unit, whether a
# first install enables and starts it, and its files in /etc.
function(pingma_package_scripts component package unit enable)
  set(dir "${PROJECT_BINARY_DIR}/packaging/${component}")
  set(PACKAGE "${package}")
  set(UNIT "${unit}")
  set(ENABLE "${enable}")
  foreach(script postinst prerm postrm)
    configure_file("${PROJECT_SOURCE_DIR}/packaging/${script}.in" "${dir}/${script}" @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                    WORLD_READ WORLD_EXECUTE)
  endforeach()
  list(TRANSFORM ARGN APPEND "\n" OUTPUT_VARIABLE lines)
  string(JOIN "" text ${lines})
  file(WRITE "${dir}/conffiles" "${text}")
  string(TOUPPER "${component}" upper)
  set(CPACK_DEBIAN_${upper}_PACKAGE_CONTROL_EXTRA
      "${dir}/postinst;${dir}/prerm;${dir}/postrm;${dir}/conffiles" PARENT_SCOPE)
endfunction()
# The registry starts at once on the embedded defaults (SQLite in /var/lib/pingma,
# 127.0.0.1:8080); a station waits for its settings and token.
pingma_package_scripts(registry pingma-registry pingma-registry.service yes
                       /etc/pingma/registry.toml)
pingma_package_scripts(station pingma-station pingma-station.service no
                       /etc/pingma/station.toml)

# A newer build is a newer package: the release is the commit count.
execute_process(COMMAND git -C "${PROJECT_SOURCE_DIR}" rev-list --count HEAD
                OUTPUT_VARIABLE pingma_commits OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0 OR NOT pingma_commits)
  set(pingma_commits 0)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pingma)
set(CPACK_PACKAGE_VENDOR pingma)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "pingma maintainers <pingma@example.org>")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL registry station tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${pingma_commits}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://pingma.example/")
set(CPACK_DEBIAN_REGISTRY_PACKAGE_NAME pingma-registry)
set(CPACK_DEBIAN_REGISTRY_PACKAGE_DEPENDS adduser)
string(CONCAT CPACK_COMPONENT_REGISTRY_DESCRIPTION
       "pingma registry: LPG cylinder traceability (one bottle, one code)\n"
       "The central registry of LPG cylinders: their records and histories, the fill\n"
       "checks that block refills of illegal cylinders, the scrap queue, delivery and\n"
       "the public page.")
set(CPACK_DEBIAN_STATION_PACKAGE_NAME pingma-station)
set(CPACK_DEBIAN_STATION_PACKAGE_DEPENDS adduser)
string(CONCAT CPACK_COMPONENT_STATION_DESCRIPTION
       "pingma filling-station agent\n"
       "Reads cylinder codes, asks the registry, and opens the filling scale over Modbus\n"
       "only for an allowed fill; records and uploads every fill.")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME pingma-tools)
string(CONCAT CPACK_COMPONENT_TOOLS_DESCRIPTION
       "pingma tools: scan decoding, QR labels, a filling-scale simulator\n"
       "pingma-scan decodes cylinder codes from images, text and EPC; pingma-label\n"
       "renders labels; pingma-scale-sim simulates a Modbus filling scale.")
include(CPack)
