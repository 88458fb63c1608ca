# The systemd unit, the default properties file and the Debian package
# (`cpack -G DEB` in a build directory; deploy/systemd/README.md).
#
# The unit goes to <prefix>/lib/systemd/system. The properties file goes to
# /etc/vectord when the prefix is /usr (the package, GNUInstallDirs' rule for
# sysconfdir), else to <prefix>/etc/vectord, decided at install time so that
# `cmake --install --prefix DIR` never writes outside DIR.
install(FILES deploy/systemd/vectord.service DESTINATION lib/systemd/system)
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(vd_etc /etc/vectord)
  else()
    set(vd_etc \"\${CMAKE_INSTALL_PREFIX}/etc/vectord\")
  endif()
  file(INSTALL DESTINATION \"\${vd_etc}\" TYPE FILE
       FILES \"${PROJECT_SOURCE_DIR}/deploy/systemd/vectord.properties\")
")

# One package, vectord: the two programs, their man pages, vectorctl's bash
# completion, the unit, /etc/vectord/vectord.properties (a conffile), and
# libvectord (shared and static library, headers, pkg-config and CMake files).
# The Depends line comes from dpkg-shlibdeps on the programs and the library;
# the triggers file runs ldconfig for libvectord.so.0.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vectord)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "vectord developers <vectord@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "vector-search worker over Kafka")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "HNSW indexes in memory, fed and queried over Kafka topics, checkpointed to files, storaged or S3 together with the Kafka offsets, so a restarted or rebalanced worker replays exactly. Includes vectorctl, a systemd unit and libvectord (the index and LHV1 checkpoint library).")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# Install with DESTDIR and prefix /usr (whatever CMAKE_INSTALL_PREFIX the
# build directory has), so that /etc/vectord lands in the package.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
foreach(f conffiles triggers postinst prerm postrm)
  configure_file(cmake/deb/${f} ${PROJECT_BINARY_DIR}/deb/${f} COPYONLY)
  list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/deb/${f})
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
